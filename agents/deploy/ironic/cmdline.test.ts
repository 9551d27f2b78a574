import { expect, test } from "bun:test";
import { BadRamdiskCmdline } from "../../errors.ts";
import { bootsIronicAgent, parseIronicCmdline } from "./cmdline.ts";

/** What Ironic 21.4's iPXE script puts on the kernel command line (seen in its httpboot/<node>/config). */
const IRONIC = "selinux=0 troubleshoot=0 text nofb nomodeset vga=normal ipa-api-url=http://10.77.0.1:6386 ipa-global-request-id=req-651b BOOTIF=52:54:00:aa:bb:cc initrd=deploy_ramdisk";

test("Ironic's command line: its API, the boot NIC (iPXE's ${mac}), port 9999 by default", () => {
  expect(bootsIronicAgent(IRONIC)).toBe(true);
  expect(bootsIronicAgent("ooo.md=http://10.77.0.1:6385 BOOTIF=01-52-54-00-aa-bb-cc")).toBe(false);
  expect(parseIronicCmdline(IRONIC)).toEqual({ apiUrl: "http://10.77.0.1:6386", listenPort: 9999, bootMac: "52:54:00:aa:bb:cc" });
});

test("advertised host and port, and ooo's CA pin for an https Ironic", () => {
  const ca = "cd".repeat(32);
  expect(parseIronicCmdline(`ipa-api-url=https://10.77.0.1:6386 ipa-advertise-host=10.77.0.150 ipa-listen-port=9998 ooo.ca=${ca} ooo.ca_url=http://10.77.0.1:8080/boot/ca.pem`)).toEqual({
    apiUrl: "https://10.77.0.1:6386",
    listenPort: 9998,
    advertiseHost: "10.77.0.150",
    caSha256: ca,
    caUrl: "http://10.77.0.1:8080/boot/ca.pem",
  });
});

test("refused: an API that is not http(s), a port that is not one, a bad MAC", () => {
  for (const [line, message] of [
    ["ipa-api-url=ftp://x", "ipa-api-url=ftp://x is not an http(s) URL"],
    ["ipa-api-url=http://x ipa-listen-port=99999", "ipa-listen-port=99999 is not a TCP port"],
    ["ipa-api-url=http://x BOOTIF=zz", "BOOTIF=zz is not a MAC address"],
  ]) {
    expect(() => parseIronicCmdline(line!)).toThrow(BadRamdiskCmdline);
    expect(() => parseIronicCmdline(line!)).toThrow(message!);
  }
});
