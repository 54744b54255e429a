// Range checks shared by everything that cuts a packet out of a buffer.

/**
 * Throws a RangeError unless `begin` and `end` are integers with
 * 0 <= begin <= end <= limit. `what` names the action for the message.
 */
export function checkRange(
  begin: number,
  end: number,
  limit: number,
  what: string,
): void {
  // `x >>> 0 === x` accepts exactly the integers 0..2^32-1; limits are < 2^30.
  if (begin >>> 0 !== begin || end >>> 0 !== end || begin > end || end > limit) {
    throw new RangeError(
      `Cannot ${what} [${begin}, ${end}): begin and end must be integers with 0 <= begin <= end <= ${limit}`,
    );
  }
}
