import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { CompletionSignal } from "./signal.ts";

describe("completion signal wire format", () => {
  test("the JSON Schema generated from the zod schema is what the deployer and agents agree on", () => {
    expect(JSON.stringify(z.toJSONSchema(CompletionSignal), null, 2)).toMatchSnapshot();
  });

  const ok = {
    version: 1,
    status: "SUCCESS",
    reason: "configured",
    data: { deploy_stdout: "", deploy_stderr: "", deploy_status_code: 0, timings: { "configure.d/20-os-apply-config": 0.1 } },
    id: "web-0:3",
    metadata_serial: 3,
  };
  test("a success and a failure parse", () => {
    expect(CompletionSignal.parse(ok).status).toBe("SUCCESS");
    const failure = { ...ok, status: "FAILURE", data: { ...ok.data, deploy_status_code: 3, failed_script: "configure.d/50-x", output_tail: "boom" } };
    expect(CompletionSignal.parse(failure).data.failed_script).toBe("configure.d/50-x");
  });
  test.each([
    ["unknown status", { ...ok, status: "DONE" }],
    ["missing data", { ...ok, data: undefined }],
    ["empty id", { ...ok, id: "" }],
    ["fractional status code", { ...ok, data: { ...ok.data, deploy_status_code: 1.5 } }],
  ])("refused: %s", (_, value) => {
    expect(CompletionSignal.safeParse(value).success).toBe(false);
  });
});
