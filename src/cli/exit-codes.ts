/** Exit codes: 0 success, 1 a run or check failed, 2 bad usage, bad project or bad input. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;
/** A second Ctrl-C: the conventional 128 + SIGINT. */
export const EXIT_CANCELED = 130;
