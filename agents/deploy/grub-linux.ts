/**
 * The kernel command line GRUB would give the installed root: the words of
 * grub.cfg's `linux` line after the kernel's path, GRUB variables replaced
 * by their values ($name and ${name}; unset ones are empty, as in GRUB).
 * Reading the disk's own grub.cfg, rather than assuming what it says, keeps
 * a kexec boot equal to a firmware boot whatever version of ooo built the
 * image.
 */
export function grubLinuxArgs(grubCfg: string, vars: Record<string, string>): string | undefined {
  const line = grubCfg.split("\n").find((l) => /^\s*linux\s/.test(l));
  if (!line) return undefined;
  const expanded = line.trim().replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => vars[(a ?? b)!] ?? "");
  return expanded.split(/\s+/).filter(Boolean).slice(2).join(" ");
}
