import { spawn, spawnSync } from "node:child_process";
import { CLI_PATH } from "./run-cli.js";

/**
 * Replays what a program wrote to a terminal and returns the lines left on the screen: text,
 * CR and LF, and the cursor and erase sequences live output uses (`ESC[nA`/`B` up and down,
 * `ESC[nG` column, `ESC[K`/`ESC[2K` erase in line); other escape sequences change nothing.
 */
export function screenLines(output: string): string[] {
  const lines: string[][] = [[]];
  let row = 0;
  let col = 0;
  const line = () => {
    while (lines.length <= row) lines.push([]);
    return lines[row]!;
  };
  const chars = Array.from(output);
  for (let i = 0; i < chars.length; i++) {
    const ch = chars[i]!;
    if (ch === "\x1b") {
      // the escape character itself was matched above; the rest is `[`, parameters, a letter
      const rest = chars.slice(i + 1, i + 24).join("");
      const match = /^\[([?]?)([\d;]*)([A-Za-z])/.exec(rest);
      if (match === null) continue;
      i += match[0].length;
      if (match[1] === "?") continue;
      const n = match[2] === "" ? undefined : Number(match[2]);
      switch (match[3]) {
        case "A":
          row = Math.max(0, row - (n ?? 1));
          break;
        case "B":
          row += n ?? 1;
          break;
        case "G":
          col = (n ?? 1) - 1;
          break;
        case "K":
          if (n === 2) lines[row] = [];
          else if (n === 1) line().fill(" ", 0, col + 1);
          else line().length = Math.min(line().length, col);
          break;
      }
      continue;
    }
    if (ch === "\r") col = 0;
    else if (ch === "\n") row += 1;
    else {
      const current = line();
      while (current.length < col) current.push(" ");
      current[col] = ch;
      col += 1;
    }
  }
  const text = lines.map((l) => l.join("").trimEnd());
  while (text.length > 0 && text[text.length - 1] === "") text.pop();
  return text;
}

/** Whether util-linux `script` is here to give a process a terminal. */
export function canOpenTerminal(): boolean {
  return spawnSync("script", ["--version"], { stdio: "ignore" }).status === 0;
}

/**
 * Runs the compiled CLI on a terminal of its own (util-linux `script`, 120×40), so it draws its
 * live output as it does for a person. `type` sends keys (`"\x03"` is Ctrl-C, which the
 * terminal turns into SIGINT for the CLI); `output()` is everything the terminal showed.
 */
export function startCliOnTerminal(args: ReadonlyArray<string>, cwd: string) {
  const quoted = [process.execPath, CLI_PATH, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.DATABASE_URL;
  delete env.STRATA_PROJECT;
  const child = spawn(
    "script",
    ["-qfec", `stty rows 40 cols 120; exec ${quoted.join(" ")}`, "/dev/null"],
    {
      cwd,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => {
    output += d;
  });
  child.stderr.setEncoding("utf8").on("data", (d: string) => {
    output += d;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  const result = new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
  return {
    result,
    output: () => output,
    type: (keys: string) => child.stdin.write(keys),
  };
}
