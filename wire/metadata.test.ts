import { describe, expect, test } from "bun:test";
import { z } from "zod";
import { ConfigDriveMetadata, metadataUrl, NodeMetadata, signalUrl } from "./metadata.ts";

const ooo = {
  version: 1,
  node: "web-0",
  role: "web",
  serial: 3,
  image: { name: "web", digest: `sha256:${"ab".repeat(32)}` },
  signal_url: "http://10.0.2.2:8780/v1/nodes/web-0/signal",
};

describe("node metadata wire format", () => {
  test("the JSON Schema generated from the zod schema is what the deployer and agents agree on", () => {
    expect(JSON.stringify(z.toJSONSchema(NodeMetadata), null, 2)).toMatchSnapshot();
  });

  test("free-form keys pass through, deployments get Heat's defaults", () => {
    const m = NodeMetadata.parse({ ooo, motd: "hi", deployments: [{ id: "1", name: "d", config: { a: 1 } }] });
    expect(m.motd).toBe("hi");
    expect(m.deployments![0]!.group).toBe("Heat::Ungrouped");
  });

  test.each([
    ["no ooo block", { motd: "hi" }],
    ["digest without sha256:", { ooo: { ...ooo, image: { name: "x", digest: "ab".repeat(32) } } }],
    ["negative serial", { ooo: { ...ooo, serial: -1 } }],
    ["newer version", { ooo: { ...ooo, version: 2 } }],
    ["deployment without config", { ooo, deployments: [{ id: "1", name: "d" }] }],
  ])("refused: %s", (_, value) => {
    expect(NodeMetadata.safeParse(value).success).toBe(false);
  });

  test("the config drive's bootstrap metadata", () => {
    expect(JSON.stringify(z.toJSONSchema(ConfigDriveMetadata), null, 2)).toMatchSnapshot();
    const boot = { "os-collect-config": { collectors: ["config-drive", "heat"], heat: { metadata_url: "http://10.0.2.2:8780", node: "web-0", token: "t" } } };
    expect(ConfigDriveMetadata.parse(boot)["os-collect-config"].heat!.node).toBe("web-0");
    expect(ConfigDriveMetadata.safeParse({ "os-collect-config": { heat: { node: "x" } } }).success).toBe(false);
  });

  test("URLs", () => {
    expect(metadataUrl("http://h:1/", "web 0")).toBe("http://h:1/v1/nodes/web%200/metadata");
    expect(signalUrl("http://h:1", "web-0")).toBe("http://h:1/v1/nodes/web-0/signal");
  });
});
