import type { BuildOptions } from "../options.ts";

/** One file a build produced, as the manifest lists it. */
export interface Artifact {
  type: string;
  path: string;
  sha256: string;
  size: number;
}

export interface OutputContext {
  options: BuildOptions;
  /** The finished root tree. */
  root: string;
  /** Scratch space inside the build's work folder. */
  scratch: string;
  /** Output path without extension (-o). */
  base: string;
  /** Artifacts already produced in this build, by type (outputs may reuse them). */
  produced: Map<string, Artifact>;
}

/** An output type (-t): one file each, registered in outputs/index.ts. */
export interface OutputType {
  name: string;
  description: string;
  /** Output types this one is built from, produced first. */
  needs?: string[];
  produce(ctx: OutputContext): Promise<Artifact>;
}
