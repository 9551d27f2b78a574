import { AlreadyProvided, MissingElement, MissingOS } from "../errors.ts";
import type { Element } from "./element.ts";

/**
 * DIB's dependency expansion (element_dependencies.py), step for step:
 * breadth-first over element-deps; a provided name satisfies a dependency
 * and needs no folder; two providers of one name, or a requested element
 * that another provides, are errors; "operating-system" must be provided;
 * cycles simply end. The result drops provided names even when a real
 * element of that name exists. We return it sorted for stable output (DIB's
 * is a set in hash order).
 */
export function expandDependencies(requested: string[], all: Map<string, Element>): Element[] {
  const final = new Set(requested);
  const queue = [...requested];
  const provided = new Set<string>();
  const providedBy = new Map<string, string[]>();
  const requiredBy = new Map<string, string[]>();

  while (queue.length) {
    const name = queue.shift()!;
    if (provided.has(name)) continue;
    const element = all.get(name);
    if (!element) throw new MissingElement(name, requiredBy.get(name) ?? []);
    for (const p of element.provides) {
      if (provided.has(p)) throw new AlreadyProvided(p, providedBy.get(p) ?? []);
      providedBy.set(p, [...(providedBy.get(p) ?? []), name]);
    }
    for (const p of element.provides) provided.add(p);
    for (const dep of element.deps) {
      requiredBy.set(dep, [...(requiredBy.get(dep) ?? []), name]);
      if (!final.has(dep) && !provided.has(dep)) queue.push(dep);
    }
    for (const dep of element.deps) final.add(dep);
  }

  const conflicts = requested.filter((r) => provided.has(r));
  if (conflicts.length) {
    const first = conflicts.sort()[0]!;
    throw new AlreadyProvided(first, providedBy.get(first) ?? [], true);
  }
  if (!provided.has("operating-system")) throw new MissingOS();

  return [...final]
    .filter((n) => !provided.has(n))
    .sort()
    .map((n) => all.get(n)!);
}

/**
 * disk-image-create's element list before expansion (arg_to_elements and
 * _arg_defaults_hack in DIB's lib): `vm` without any `block-device-*` element
 * gets DIB's old default disk layout appended (block-device-mbr, or
 * block-device-efi on arm64), then `base` is put first unless -n.
 */
export function dibInputElements(elements: string[], options: { skipBase: boolean; arch: string }): string[] {
  const list = [...elements];
  if (list.includes("vm") && !list.some((e) => e.startsWith("block-device-"))) {
    list.push(["arm64", "aarch64"].includes(options.arch) ? "block-device-efi" : "block-device-mbr");
  }
  return options.skipBase ? list : ["base", ...list];
}
