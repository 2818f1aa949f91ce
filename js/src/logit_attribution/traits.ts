// LogitAttribution's synced traits (prisma_widgets/widgets/logit_attribution.py), keys and types.
import { type ArrayTrait, type AssertTrue, BASE_TRAIT_KEYS, type BaseTraits, type SameKeys } from "../shared/traits";

export type Part = "head" | "attn" | "mlp" | "embed" | "bias";
export type Normalization = "all" | "heads";

export interface LogitAttributionTraits extends BaseTraits {
  // data (binary)
  component_values: ArrayTrait;
  class_scores: ArrayTrait;
  position_values: ArrayTrait;
  pooled_attention: ArrayTrait;
  image_pixels: ArrayTrait;
  // layout and names
  labels: string[];
  n_layers: number;
  n_heads: number;
  class_names: string[];
  position_class_ids: number[];
  grid: number[];
  n_prefix_tokens: number;
  token_labels: string[];
  // selection, both ways
  target: number;
  versus: number;
  layer: number;
  head: number;
  part: Part;
  normalization: Normalization;
  prompts: string[];
  // the kernel round trip
  prompts_editable: boolean;
  prompt_note: string;
  status: string;
  // look
  cell_size: number;
  map_size: number;
  opacity: number;
}

export const TRAIT_KEYS = [
  ...BASE_TRAIT_KEYS,
  "component_values",
  "class_scores",
  "position_values",
  "pooled_attention",
  "image_pixels",
  "labels",
  "n_layers",
  "n_heads",
  "class_names",
  "position_class_ids",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "target",
  "versus",
  "layer",
  "head",
  "part",
  "normalization",
  "prompts",
  "prompts_editable",
  "prompt_note",
  "status",
  "cell_size",
  "map_size",
  "opacity",
] as const;

export type KeysMatch = AssertTrue<SameKeys<LogitAttributionTraits, typeof TRAIT_KEYS>>;
