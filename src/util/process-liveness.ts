import { readFileSync } from "node:fs";

/**
 * Whether a process with this pid exists on this machine (signal 0 checks without signalling).
 *
 * EPERM means the process exists but belongs to another user, so it counts as alive.
 *
 * @example
 * isProcessAlive(process.pid); // true
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A token that tells this run of process `pid` apart from an earlier process that had the same
 * pid (after a container restart the pid recorded in a lock file may be ours, or any live
 * process's): the kernel's boot id and the process's start time. Undefined where it cannot be
 * read (no `/proc`, the process is gone).
 *
 * @example
 * processStartToken(process.pid); // "b9b3398d-5167-45e7-8776-eedf64422ab1/444192"
 */
export function processStartToken(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // after the command name, which may hold spaces and parentheses: field 3 onwards;
    // the start time is field 22
    const start = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
    if (start === undefined || !/^\d+$/.test(start)) return undefined;
    const boot = readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    return `${boot}/${start}`;
  } catch {
    return undefined;
  }
}
