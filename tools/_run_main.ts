// The end of every smoke driver: run `main`, exit with its code, and turn
// an unexpected error into one FAIL line and exit code 1.

/** Runs `main` and exits the process with its code; an error exits 1 after a FAIL line. */
export async function runMain(main: () => Promise<number>): Promise<never> {
  try {
    Deno.exit(await main());
  } catch (error) {
    console.error(`FAIL ${error instanceof Error ? error.message : error}`);
    Deno.exit(1);
  }
}
