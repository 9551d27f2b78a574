import { describe, expect, test } from "bun:test";
import { BadRamdiskCmdline } from "../errors.ts";
import { parseRamdiskCmdline } from "./cmdline.ts";

describe("the ramdisk's kernel command line", () => {
  test("metadata URL and the boot NIC as iPXE gives it", () => {
    expect(parseRamdiskCmdline("console=ttyS0 ooo.md=http://10.0.2.100:8080/ BOOTIF=01-52-54-00-AB-CD-EF quiet\n")).toEqual({
      metadataUrl: "http://10.0.2.100:8080/",
      bootMac: "52:54:00:ab:cd:ef",
    });
  });

  test("a CA pin, lowercased; the last of a repeated key wins", () => {
    const ca = "AB".repeat(32);
    expect(parseRamdiskCmdline(`ooo.md=http://a ooo.md=https://b ooo.ca=${ca} ooo.ca_url=http://b:8080/boot/ca.pem`)).toEqual({
      metadataUrl: "https://b",
      caSha256: ca.toLowerCase(),
      caUrl: "http://b:8080/boot/ca.pem",
    });
  });

  const refused: [string, string][] = [
    ["console=ttyS0", "no ooo.md=URL"],
    ["ooo.md=ftp://x", "not an http(s) URL"],
    ["ooo.md=http://x BOOTIF=zz", "not a MAC address"],
    ["ooo.md=http://x ooo.ca=1234", "not a sha256"],
    [`ooo.md=https://x ooo.ca=${"ab".repeat(32)}`, "needs ooo.ca_url=URL"],
  ];
  for (const [line, message] of refused)
    test(`refused: ${line}`, () => {
      expect(() => parseRamdiskCmdline(line)).toThrow(BadRamdiskCmdline);
      expect(() => parseRamdiskCmdline(line)).toThrow(message);
    });
});
