// Geometry and colours of the LogitLens map. Pure: vitest covers it.
import type { Rect } from "../shared/patches";

export { type Rect, mapSize, patchRect, patchTokenAt } from "../shared/patches";

/** Categorical palette for the legend: the 20 colours of Tableau / matplotlib "tab20", strong ones first. */
export const PALETTE: [number, number, number][] = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [188, 189, 34],
  [23, 190, 207],
  [127, 127, 127],
  [174, 199, 232],
  [255, 187, 120],
  [152, 223, 138],
  [255, 152, 150],
  [197, 176, 213],
  [196, 156, 148],
  [247, 182, 210],
  [219, 219, 141],
  [158, 218, 229],
  [57, 59, 121],
];
/** Colour of classes outside the palette ("other"). */
export const OTHER: [number, number, number] = [200, 200, 200];

/** Colour of the class at legend position `pos` (-1 or beyond the palette: OTHER). */
export function classColor(pos: number): [number, number, number] {
  return pos >= 0 && pos < PALETTE.length ? PALETTE[pos] : OTHER;
}

/** A string's FNV-1a hash (stable across sessions and pages: a prompt keeps its colour). */
export function hashText(text: string): number {
  let h = 2166136261 >>> 0;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Palette slots for classes named by text (a CLIP lens' prompts): by what a class is, not where it stands,
 * so removing or reordering prompts recolours no other class. A name keeps the slot it had before
 * (`previous`, the view's memory across edits); a new one takes its hash's slot, or the next free one
 * (names in hash order, so the result does not depend on the prompts' order). -1 (OTHER) once the palette
 * is used up.
 */
export function colourSlots(names: readonly string[], previous?: ReadonlyMap<string, number>): number[] {
  const n = PALETTE.length;
  const slots = new Array<number>(names.length).fill(-1);
  const taken = new Set<number>();
  names.forEach((name, i) => {
    const s = previous?.get(name);
    if (s !== undefined && s >= 0 && !taken.has(s)) {
      slots[i] = s;
      taken.add(s);
    }
  });
  const order = names.map((name, i) => ({ name, i, h: hashText(name) })).sort((a, b) => a.h - b.h || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // up to 10 classes hash onto tab20's 10 strong colours (its other 10 are their pale twins, which wash
  // out under the overlay's opacity); more spread over all 20
  const span = names.length <= 10 ? 10 : n;
  for (const { i, h } of order) {
    if (slots[i] >= 0 || taken.size >= n) continue;
    let s = h % span;
    while (taken.has(s)) s = (s + 1) % (taken.size >= span ? n : span);
    slots[i] = s;
    taken.add(s);
  }
  return slots;
}

/**
 * The words that tell class names apart: the words every name starts with (and ends with) removed, as in
 * "a photo of a cat" / "a photo of a dog" -> "cat" / "dog", and an article left in front after a shared
 * prefix ("a photo of grass" / "a photo of a cat" -> "grass" / "cat"). Names are left unchanged when there
 * is one, and no name is left empty.
 */
export function distinctNames(names: readonly string[]): string[] {
  if (names.length < 2) return [...names];
  const words = names.map((n) => n.trim().split(/\s+/));
  const shortest = Math.min(...words.map((w) => w.length));
  let pre = 0;
  while (pre < shortest - 1 && words.every((w) => w[pre] === words[0][pre])) pre++;
  let post = 0;
  while (post < shortest - 1 - pre && words.every((w) => w[w.length - 1 - post] === words[0][words[0].length - 1 - post])) post++;
  if (pre === 0 && post === 0) return [...names];
  // "a photo of a cat" / "a photo of grass": after the shared "a photo of", an article is not what differs
  const article = (w: string) => /^(a|an|the)$/i.test(w);
  return words.map((w) => {
    const rest = w.slice(pre, w.length - post);
    return (pre > 0 && rest.length > 1 && article(rest[0]) ? rest.slice(1) : rest).join(" ");
  });
}

/** Text colour (black or white) that reads on a background colour. */
export function textOn(c: [number, number, number]): string {
  return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2] > 140 ? "#000" : "#fff";
}

/** Next layer position for the play button (wraps around). */
export function nextLayerPos(pos: number, n: number): number {
  return n <= 0 ? 0 : (pos + 1) % n;
}

/** Line chart geometry: x of layer position i of n, y of value v in [0, top]. */
export function chartPoint(i: number, n: number, v: number, top: number, R: Rect): { x: number; y: number } {
  const x = n <= 1 ? R.x + R.w / 2 : R.x + (i * R.w) / (n - 1);
  const t = top > 0 ? Math.min(1, Math.max(0, v / top)) : 0;
  return { x, y: R.y + R.h - t * R.h };
}
