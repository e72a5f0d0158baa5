import { StoreError } from "../errors.js";

/** What messages may say about a Postgres URL, and the password they must never say. */
export interface PostgresTarget {
  /** `host:port`, for messages. */
  readonly hostPort: string;
  readonly database: string;
  /** The decoded user name (a password equal to it is no secret worth redacting). */
  readonly user: string;
  /** The decoded password, to redact from any message; `""` when there is none. */
  readonly password: string;
}

const FORM = "use postgres://user:password@host:port/database";

/**
 * Checks a `postgres://` URL before anything connects with it and says what messages may show.
 *
 * A URL that is not one, another scheme, a port that is not 1 to 65535 or a malformed `%`
 * escape is a `db_unreachable` error naming the part that is wrong and never the URL's text
 * (a password with a `%` in it must be written `%25`).
 *
 * @example
 * describePostgresUrl("postgres://app:s3cret@db:5432/strata").hostPort; // "db:5432"
 */
export function describePostgresUrl(databaseUrl: string): PostgresTarget {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(databaseUrl)?.[1];
  if (scheme !== undefined && !/^postgres(ql)?$/i.test(scheme)) {
    throw urlError(`the database URL has protocol "${scheme.toLowerCase()}:"; ${FORM}`);
  }
  const port = portOf(databaseUrl);
  if (port !== undefined && (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
    // not echoed: an unescaped "/" in a password makes the part after it look like the port
    throw urlError(
      'the database URL has an invalid port; use a number from 1 to 65535, and write a "/", "@" or ":" in the user name or password as %2F, %40 or %3A',
    );
  }
  let url: URL;
  try {
    url = new URL(databaseUrl);
  } catch {
    throw urlError(`the database URL is not a valid URL; ${FORM}`);
  }
  const host = url.hostname || "localhost";
  const user = decoded(url.username, "user name");
  return {
    hostPort: `${host}:${url.port || "5432"}`,
    database: decoded(url.pathname.replace(/^\//, ""), "database name") || "postgres",
    user,
    password: decoded(url.password, "password"),
  };
}

/** The port as written in the URL's authority, if one is written. */
function portOf(databaseUrl: string): string | undefined {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(databaseUrl)?.[1];
  if (authority === undefined) return undefined;
  const hostPort = authority.slice(authority.lastIndexOf("@") + 1);
  const match = hostPort.startsWith("[")
    ? /^\[[^\]]*\](?::(.*))?$/.exec(hostPort)
    : /^[^:]*(?::(.*))?$/.exec(hostPort);
  const port = match?.[1];
  return port === undefined || port === "" ? undefined : port;
}

function decoded(text: string, part: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    // the part itself is not shown: it may be the password
    throw urlError(`the database URL's ${part} has a malformed %-escape; write a literal % as %25`);
  }
}

function urlError(message: string): StoreError {
  return new StoreError("db_unreachable", message);
}

/**
 * The user and database a Postgres URL names, for messages; each undefined when the URL names
 * none or does not parse.
 *
 * @example
 * postgresRole("postgres://app:s3cret@db/strata"); // { role: "app", database: "strata" }
 */
export function postgresRole(databaseUrl: string): {
  readonly role: string | undefined;
  readonly database: string | undefined;
} {
  try {
    const url = new URL(databaseUrl);
    return {
      role: decodeURIComponent(url.username) || undefined,
      database: decodeURIComponent(url.pathname.replace(/^\//, "")) || undefined,
    };
  } catch {
    return { role: undefined, database: undefined };
  }
}
