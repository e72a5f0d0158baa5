import { describe, expect, it } from "vitest";
import { describePostgresUrl } from "../../src/store/postgres-url.js";
import { openPostgresStore } from "../../src/store/store.js";

const PASSWORD = "s3cret-Pa55";

/** The error describePostgresUrl throws for `url`. */
function errorOf(url: string): Error & { code?: string } {
  try {
    describePostgresUrl(url);
  } catch (error) {
    return error as Error & { code?: string };
  }
  throw new Error(`${url} was accepted`);
}

describe("describePostgresUrl", () => {
  it.each([
    [
      "postgres://app:s3cret@db.internal:6543/strata",
      "db.internal:6543",
      "strata",
      "app",
      "s3cret",
    ],
    ["postgresql://app@127.0.0.1/strata", "127.0.0.1:5432", "strata", "app", ""],
    [
      "postgres://a%40b:p%25ss%2Fw%40rd@[::1]:5432/my%20db",
      "[::1]:5432",
      "my db",
      "a@b",
      "p%ss/w@rd",
    ],
    ["postgres:///strata?host=/var/run/postgresql", "localhost:5432", "strata", "", ""],
    ["POSTGRES://h:65535/", "h:65535", "postgres", "", ""],
  ])("reads %s", (url, hostPort, database, user, password) => {
    expect(describePostgresUrl(url)).toEqual({ hostPort, database, user, password });
  });

  it.each([
    ["a bad %-escape in the password", `postgres://app:${PASSWORD}%zz@h:5432/db`, "password"],
    ["a lone % in the password", `postgres://app:${PASSWORD}%@h:5432/db`, "password"],
    ["a bad %-escape in the user name", `postgres://app%G1:${PASSWORD}@h:5432/db`, "user name"],
    [
      "a bad %-escape in the database name",
      `postgres://app:${PASSWORD}@h/db%E0%A4`,
      "database name",
    ],
  ])("refuses %s, naming the part and not the password", (_name, url, part) => {
    const error = errorOf(url);
    expect(error.code).toBe("db_unreachable");
    expect(error.message).toBe(
      `the database URL's ${part} has a malformed %-escape; write a literal % as %25`,
    );
  });

  it.each([
    ["a port past 65535", `postgres://app:${PASSWORD}@h:99999/db`],
    ["port 0", `postgres://app:${PASSWORD}@h:0/db`],
    ["a port that is not a number", `postgres://app:${PASSWORD}@h:abc/db`],
    ["a negative port", `postgres://app:${PASSWORD}@h:-5/db`],
    ["a port on an IPv6 host", `postgres://app:${PASSWORD}@[::1]:70000/db`],
    // the part of the password after an unescaped "/" reads as host and port
    ["an unescaped / in the password", `postgres://app:${PASSWORD}/x@h:5432/db`],
  ])("refuses %s without echoing any of the URL", (_name, url) => {
    const error = errorOf(url);
    expect(error.code).toBe("db_unreachable");
    expect(error.message).toMatch(
      /^the database URL has an invalid port; use a number from 1 to 65535/,
    );
    expect(error.message).toContain("%2F, %40 or %3A");
  });

  it.each([
    ["mysql", `mysql://root:${PASSWORD}@h/db`, 'the database URL has protocol "mysql:"'],
    ["http", `http://root:${PASSWORD}@h/db`, 'the database URL has protocol "http:"'],
    ["no scheme", `root:${PASSWORD}@h/db`, 'the database URL has protocol "root:"'],
    ["no URL at all", `${PASSWORD} here`, "the database URL is not a valid URL"],
    ["an empty host", `postgres://root:${PASSWORD}@/db`, "the database URL is not a valid URL"],
  ])("refuses %s", (_name, url, message) => {
    const error = errorOf(url);
    expect(error.code).toBe("db_unreachable");
    expect(error.message).toContain(message);
    expect(error.message).toContain("use postgres://user:password@host:port/database");
  });

  it("never puts the password in any message, stack or cause", async () => {
    const urls = [
      `postgres://app:${PASSWORD}%zz@h:5432/db`,
      `postgres://app:${PASSWORD}@h:99999/db`,
      `postgres://app:${PASSWORD}/x@h:5432/db`,
      `mysql://app:${PASSWORD}@h/db`,
      `${PASSWORD} here`,
    ];
    for (const url of urls) {
      const error = (await openPostgresStore(url).catch((e: unknown) => e)) as Error & {
        cause?: Error;
      };
      expect(error).toMatchObject({ code: "db_unreachable" });
      const text = `${error.message}\n${error.stack}\n${error.cause?.stack ?? ""}`;
      expect(text).not.toContain(PASSWORD);
      expect(text).not.toContain("s3cret");
    }
  });
});
