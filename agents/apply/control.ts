import { existsSync, readFileSync, statSync } from "node:fs";
import { pyStr } from "../pyjson/repr.ts";
import { lookupGroup, lookupUser } from "./accounts.ts";
import { loadYamlMapping, YamlTimestamp, type YamlValue } from "./yaml11.ts";

/**
 * A template's control file, `TEMPLATE.oac`: YAML with `mode`, `owner`,
 * `group` and `allow_empty`, checked with os-apply-config's rules and
 * messages (`mode: 0600` is octal, `0o755` or `"0600"` are refused, `755` is
 * decimal and out of range; owner and group are names or ids that must exist).
 */
export interface Control {
  /** Permission bits; undefined (or 0, which os-apply-config ignores) keeps the existing file's. */
  mode?: number;
  uid?: number;
  gid?: number;
  /** When false, an empty result deletes the file instead of writing it. */
  allowEmpty: boolean;
}

export class ControlError extends Error {}

const str = (v: YamlValue) => (v instanceof YamlTimestamp ? v.text : pyStr(v));

function octal(v: bigint): string {
  return v < 0n ? `-0o${(-v).toString(8)}` : `0o${v.toString(8)}`;
}

function account(kind: "owner" | "group", v: YamlValue, db: string): number {
  const lookup = kind === "owner" ? lookupUser : lookupGroup;
  let found: number | undefined;
  if (typeof v === "bigint") found = lookup({ id: Number(v) });
  else if (typeof v === "string") found = lookup({ name: v });
  else throw new ControlError(`${kind} '${str(v)}' must be a string or int`);
  if (found === undefined) throw new ControlError(`${kind} '${str(v)}' not found in ${db} database`);
  return found;
}

export function parseControl(text: string): Control {
  let mapping;
  try {
    mapping = loadYamlMapping(text);
  } catch (e) {
    throw new ControlError(`invalid YAML: ${(e as Error).message}`);
  }
  if (mapping === "not-a-mapping") throw new ControlError("header is not a dict");
  const control: Control = { allowEmpty: true };
  for (const [key, v] of mapping) {
    switch (key) {
      case "allow_empty":
        if (typeof v !== "boolean") throw new ControlError(`allow_empty requires Boolean, got: '${str(v)}'`);
        control.allowEmpty = v;
        break;
      case "mode":
        if (typeof v !== "bigint") throw new ControlError(`mode '${str(v)}' is not numeric`);
        if (v < 0n || v > 0o777n) throw new ControlError(`mode '${octal(v)}' out of range`);
        control.mode = Number(v);
        break;
      case "owner":
        control.uid = account("owner", v, "passwd");
        break;
      case "group":
        control.gid = account("group", v, "group");
        break;
      default:
        throw new ControlError(`unrecognised file control key '${key}'`);
    }
  }
  return control;
}

/** The control file beside a template, if it is a regular file. */
export function readControl(template: string): Control {
  const path = template + ".oac";
  if (!existsSync(path) || !statSync(path).isFile()) return { allowEmpty: true };
  return parseControl(readFileSync(path, "utf8"));
}
