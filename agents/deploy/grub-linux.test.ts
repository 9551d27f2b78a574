import { describe, expect, test } from "bun:test";
import { grubConfig } from "../../wire/boot.ts";
import { KERNEL_CMDLINE } from "../../builder/outputs/steps.ts";
import { grubLinuxArgs } from "./grub-linux.ts";

describe("the command line GRUB would give the installed root", () => {
  test("from the grub.cfg the builder writes", () => {
    const args = grubLinuxArgs(grubConfig(KERNEL_CMDLINE), { partuuid: "1234-abcd", slot: "A", trial: "0", EXTRA_CMDLINE: "" });
    expect(args).toBe(`root=PARTUUID=1234-abcd ro ooo.slot=A ooo.trial=0 ${KERNEL_CMDLINE}`);
  });

  test("EXTRA_CMDLINE's words join it; ${braced} and unset variables as GRUB expands them", () => {
    expect(grubLinuxArgs(grubConfig("quiet"), { partuuid: "p", slot: "B", trial: "1", EXTRA_CMDLINE: "a=1  b" })).toBe("root=PARTUUID=p ro ooo.slot=B ooo.trial=1 quiet a=1 b");
    expect(grubLinuxArgs("  linux /vmlinuz x=${one} y=$two z\n", { one: "1" })).toBe("x=1 y= z");
  });

  test("no linux line: nothing", () => {
    expect(grubLinuxArgs("menuentry x {\n}\n", {})).toBeUndefined();
  });
});
