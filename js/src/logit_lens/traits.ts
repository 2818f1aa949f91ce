// LogitLens's synced traits (prisma_widgets/widgets/logit_lens.py), keys and types.
import { type ArrayTrait, type AssertTrue, BASE_TRAIT_KEYS, type BaseTraits, type SameKeys } from "../shared/traits";

export type Mode = "top1" | "class_prob" | "entropy" | "kl" | "rank";
export type Normalization = "layer" | "global";

export interface LogitLensTraits extends BaseTraits {
  // data (binary)
  image_pixels: ArrayTrait;
  top_indices: ArrayTrait;
  top_probs: ArrayTrait;
  top_scale: ArrayTrait;
  entropy: ArrayTrait;
  kl: ArrayTrait;
  final_rank: ArrayTrait;
  class_probs: ArrayTrait;
  class_scale: ArrayTrait;
  track_indices: ArrayTrait;
  track_probs: ArrayTrait;
  track_scale: ArrayTrait;
  // layout and names
  grid: number[];
  n_prefix_tokens: number;
  token_labels: string[];
  layer_indices: number[];
  class_names: string[];
  class_ids: number[];
  max_entropy: number;
  site: string;
  /** the image's name (a PNG export's caption) */
  image_label: string;
  // selection, both ways
  layer: number;
  patch: number;
  target_class: number;
  mode: Mode;
  prompts: string[];
  normalization: Normalization;
  // prompt editing
  prompts_editable: boolean;
  prompt_note: string;
  status: string;
  // look
  show_labels: boolean;
  opacity: number;
  size: number;
  play_interval_ms: number;
  // the time axis of a clip (shared/frames.ts)
  frames: number;
  frame: number;
  frame_pixels: ArrayTrait;
}

export const TRAIT_KEYS = [
  ...BASE_TRAIT_KEYS,
  "image_pixels",
  "top_indices",
  "top_probs",
  "top_scale",
  "entropy",
  "kl",
  "final_rank",
  "class_probs",
  "class_scale",
  "track_indices",
  "track_probs",
  "track_scale",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "layer_indices",
  "class_names",
  "class_ids",
  "max_entropy",
  "site",
  "image_label",
  "layer",
  "patch",
  "target_class",
  "mode",
  "prompts",
  "normalization",
  "prompts_editable",
  "prompt_note",
  "status",
  "show_labels",
  "opacity",
  "size",
  "play_interval_ms",
  "frames",
  "frame",
  "frame_pixels",
] as const;

export type KeysMatch = AssertTrue<SameKeys<LogitLensTraits, typeof TRAIT_KEYS>>;
