import { z } from "zod";

/**
 * Element metadata files, one schema each. DIB reads them with ad-hoc Python;
 * we validate them at load time so a broken element is named before the
 * build starts instead of failing halfway through.
 */

/** `element-deps` / `element-provides`: names one per line, stripped, blanks dropped. No comments (DIB). */
export const ElementNameList = z
  .string()
  .transform((text) => new Set(text.split("\n").map((l) => l.trim()).filter(Boolean)))
  .describe("Newline-separated element names; DIB has no comment syntax, so '# x' is a name.");

const When = z.union([z.string(), z.array(z.string())]).describe("VAR=value or VAR!=value; a list means all of them");

export const PackageParams = z
  .strictObject({
    phase: z
      .enum(["pre-install.d", "install.d", "post-install.d"])
      .default("install.d")
      .describe("Phase whose package step installs this package"),
    uninstall: z.unknown().optional().describe("Present: remove the package instead of installing it"),
    "build-only": z.unknown().optional().describe("Present: install it, then remove it at the end of the phase"),
    installtype: z.string().optional().describe("Only for this install type (DIB_INSTALLTYPE_<element>)"),
    arch: z.string().optional().describe("Comma-separated architectures this package is for"),
    "not-arch": z.string().optional().describe("Comma-separated architectures this package is not for"),
    dib_python_version: z
      .union([z.string(), z.number()])
      .optional()
      .describe("Only when DIB_PYTHON_VERSION equals this (DIB; used by many of its elements)"),
    when: When.optional(),
  })
  .refine((p) => !(p.arch && p["not-arch"]), { message: "arch and not-arch given together" });

export type PackageParams = z.output<typeof PackageParams>;

/** DIB (`if not params: params = [{}]`): any empty value means "install, with the defaults". */
const isEmpty = (v: unknown) =>
  !v || (Array.isArray(v) && v.length === 0) || (typeof v === "object" && Object.keys(v as object).length === 0);

/**
 * `package-installs.yaml` (or `.json`): package name → nothing (`pkg:`,
 * `pkg: ''`, `pkg: []`), one parameter map, or a list of them. Normalized to
 * a list of parameter maps per package.
 */
export const PackageInstalls = z
  .record(
    z.string().min(1),
    z.preprocess(
      (v) => (isEmpty(v) ? [{}] : Array.isArray(v) ? v : [v]),
      z.array(PackageParams),
    ),
  )
  .nullable()
  .transform((file) => file ?? {});

export type PackageInstallsFile = z.infer<typeof PackageInstalls>;

/**
 * `state-paths` (ooo): absolute paths whose content is precious and lives on
 * the state partition, bind-mounted over the read-only root at boot.
 */
export const StatePaths = z
  .string()
  .transform((text) =>
    text
      .split("\n")
      .map((l) => l.replace(/#.*$/, "").trim())
      .filter(Boolean),
  )
  .pipe(
    z.array(
      z
        .string()
        .refine((p) => p.startsWith("/"), { message: "state path must be absolute" })
        .refine((p) => !p.split("/").includes(".."), { message: "state path must not contain '..'" })
        .refine((p) => p !== "/", { message: "state path must not be /" }),
    ),
  );
