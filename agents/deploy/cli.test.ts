import { expect, test } from "bun:test";
import { pauseBeforeNextPoll } from "./cli.ts";

test("standby polls: a quick answer that changed the command is followed by the next held poll at once; one that changed nothing waits", () => {
  // Back to "wait" with a new ETag: the next poll is held by the service, so a deploy set meanwhile is taken at once.
  expect(pauseBeforeNextPoll(true, '"7"', '"8"')).toBe(false);
  // The first answer of all (no ETag before) that names one: held from now on.
  expect(pauseBeforeNextPoll(true, undefined, '"1"')).toBe(false);
  // A quick 304 or the same ETag again: this service did not hold the poll; asking at once would spin.
  expect(pauseBeforeNextPoll(true, '"8"', '"8"')).toBe(true);
  // A service without ETags.
  expect(pauseBeforeNextPoll(true, undefined, undefined)).toBe(true);
  // A held poll that ran its time: ask again at once.
  expect(pauseBeforeNextPoll(false, '"8"', '"8"')).toBe(false);
});
