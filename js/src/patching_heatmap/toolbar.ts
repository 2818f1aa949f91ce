// PatchingHeatmap's toolbar: site, by, method, direction (each runs a new sweep in the kernel, so they
// are disabled in a saved page), colour range, colour map, the head shown (head x position), PNG.
import { COLORMAP_OPTIONS } from "../shared/colormap";
import { button, el, select } from "../shared/dom";
import type { Traits } from "../shared/traits";
import { type PatchData, SITE_BYS, headLabel } from "./data";
import type { By, Direction, Method, Normalization, PatchingHeatmapTraits, Selection, Site } from "./traits";

export const BY_LABELS: Record<By, string> = {
  position: "position",
  head: "head",
  head_position: "head × position",
  layer: "whole layer",
  frame: "whole frame",
  tube: "tube (patch × time)",
};
/** The `by`s of a clip's position sets: offered for a video model only (an image has one frame). */
const CLIP_BYS: readonly string[] = ["frame", "tube"];
export const KERNEL_ONLY = "needs the kernel (this page has none)";

const SITES: Site[] = ["resid_pre", "resid_mid", "attn_out", "mlp_out", "z", "pattern"];
const METHODS: Method[] = ["exact", "attribution"];
const DIRECTIONS: { value: Direction; label: string }[] = [
  { value: "denoise", label: "denoise (clean → corrupted)" },
  { value: "noise", label: "noise (corrupted → clean)" },
];
const NORMALIZATIONS: { value: Normalization; label: string }[] = [
  { value: "global", label: "± max |effect|" },
  { value: "unit", label: "fixed ± 1" },
];

/**
 * What each method costs and gives, for `n` cells (0: not known yet). Attribution is not always the faster:
 * measured on mouse-vit (widget, CPU), it was 7x faster by position (260 cells), as fast by head (16 cells)
 * and 1.3x slower by whole layer (4 cells) (see DEVELOPERS.md, "Attribution vs exact").
 */
export function methodHelp(m: Method, n: number): string {
  const cells = n > 0 ? `${n} cells` : "every cell";
  if (m === "exact") return `exact patching: one patched forward pass per cell (${cells}); the true effects`;
  const speed = n <= 0 ? "it saves time only when there are many cells" : n < 64 ? "with this few cells it is no faster than exact" : "with this many cells it is faster than exact";
  return `attribution patching: a linear (gradient) estimate of ${cells} from one forward and one backward pass; ${speed}`;
}

export interface Toolbar {
  site: ReturnType<typeof select>;
  by: ReturnType<typeof select>;
  direction: ReturnType<typeof select>;
  norm: ReturnType<typeof select>;
  cmap: ReturnType<typeof select>;
  head: ReturnType<typeof select>;
  methods: HTMLButtonElement[];
}

export function buildToolbar(host: HTMLElement, set: (v: Partial<PatchingHeatmapTraits>) => void, selectHead: (h: number) => void, exportPng: () => void): Toolbar {
  const site = select("site", SITES.map((s) => ({ value: s, label: s })), "resid_pre", (v) => set({ site: v }));
  const by = select("by", (Object.entries(BY_LABELS) as [By, string][]).map(([value, label]) => ({ value, label })), "position", (v) => set({ by: v }));
  const methods = METHODS.map((m) => button(m, methodHelp(m, 0), () => set({ method: m }), "pw-ph-method"));
  const methodBox = el("span", { cls: "pw-segmented", attrs: { role: "group", "aria-label": "method" } }, methods);
  const direction = select("direction", DIRECTIONS, "denoise", (v) => set({ direction: v }));
  const norm = select("colour range", NORMALIZATIONS, "global", (v) => set({ normalization: v }));
  const cmap = select("colours", COLORMAP_OPTIONS, "rdbu", (v) => set({ colormap: v }));
  const head = select("head", [], "0", (v) => selectHead(Number(v)));
  const png = button("PNG", "save the current view (heatmap, maps, colour bar, panel) as a PNG image", exportPng, "pw-ph-png");
  host.append(site.root, by.root, methodBox, direction.root, norm.root, cmap.root, head.root, png);
  return { site, by, methods, direction, norm, cmap, head };
}

/** Show the traits in the controls; only the `by`s the site allows; kernel-only controls off without a kernel. */
export function syncToolbar(c: Toolbar, t: Traits<PatchingHeatmapTraits>, d: PatchData | null, sel: Selection | null): void {
  const live = !!t.get("interactive");
  const site = t.get("site") ?? "resid_pre";
  c.site.set(site);
  c.by.set(t.get("by") ?? "position");
  c.direction.set(t.get("direction") ?? "denoise");
  c.norm.set(t.get("normalization") ?? "global");
  c.cmap.set(t.get("colormap") ?? "rdbu");
  const allowed = SITE_BYS[site] ?? ["position", "layer"];
  const clip = Number(t.get("frames") ?? 1) > 1;
  Array.from(c.by.input.options).forEach((o) => {
    const offered = clip || !CLIP_BYS.includes(o.value);
    o.hidden = !offered;
    o.disabled = !offered || !allowed.includes(o.value as never);
  });
  const method = t.get("method") ?? "exact";
  for (const b of c.methods) {
    b.setAttribute("aria-pressed", String(b.textContent === method));
    b.disabled = !live;
    b.title = live ? methodHelp(b.textContent as Method, d?.values.length ?? 0) : `${b.textContent}: ${KERNEL_ONLY}`;
  }
  for (const s of [c.site, c.by, c.direction]) {
    s.input.disabled = !live;
    s.input.title = live ? "changing this runs a new sweep in the kernel" : KERNEL_ONLY;
  }
  const hp = d?.by === "head_position";
  c.head.root.style.display = hp ? "" : "none";
  if (d && hp && c.head.input.options.length !== d.H) {
    c.head.input.replaceChildren(...Array.from({ length: d.H }, (_, h) => el("option", { text: headLabel(d, h), attrs: { value: String(h) } })));
  }
  if (d && hp) c.head.set(String(sel?.head ?? 0));
}
