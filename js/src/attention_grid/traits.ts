// AttentionGrid's synced traits (prisma_widgets/widgets/attention_grid.py), keys and types.
import type { ScaleKind } from "../shared/scale";
import { type ArrayTrait, type AssertTrue, BASE_TRAIT_KEYS, type BaseTraits, type SameKeys } from "../shared/traits";

export type Direction = "row" | "column";
export type Normalization = "head" | "layer" | "global";
export type Summary = "none" | "distance" | "entropy";

export interface AttentionGridTraits extends BaseTraits {
  // data (binary)
  patterns: ArrayTrait;
  pattern_scale: ArrayTrait;
  rollout_patterns: ArrayTrait;
  rollout_scale: ArrayTrait;
  image_pixels: ArrayTrait;
  head_distance: ArrayTrait;
  head_entropy: ArrayTrait;
  // layout
  grid: number[];
  n_prefix_tokens: number;
  token_labels: string[];
  layer_indices: number[];
  head_indices: number[];
  image_labels: string[];
  // selection, both ways
  layer: number;
  head: number;
  query: number;
  direction: Direction;
  image_index: number;
  normalization: Normalization;
  scale: ScaleKind;
  percentile: number;
  show_rollout: boolean;
  show_detail: boolean;
  summary: Summary;
  sort_heads: boolean;
  // look
  thumb_size: number;
  opacity: number;
  // a clip (prisma_widgets/widgets/attention_frames.py): shown as a film strip; `frame` is the query's frame
  attention: "joint" | "space" | "time";
  frames: number;
  frame: number;
  frame_pixels: ArrayTrait;
}

export const TRAIT_KEYS = [
  ...BASE_TRAIT_KEYS,
  "patterns",
  "pattern_scale",
  "rollout_patterns",
  "rollout_scale",
  "image_pixels",
  "head_distance",
  "head_entropy",
  "grid",
  "n_prefix_tokens",
  "token_labels",
  "layer_indices",
  "head_indices",
  "image_labels",
  "layer",
  "head",
  "query",
  "direction",
  "image_index",
  "normalization",
  "scale",
  "percentile",
  "show_rollout",
  "show_detail",
  "summary",
  "sort_heads",
  "thumb_size",
  "opacity",
  "attention",
  "frames",
  "frame",
  "frame_pixels",
] as const;

export type KeysMatch = AssertTrue<SameKeys<AttentionGridTraits, typeof TRAIT_KEYS>>;
