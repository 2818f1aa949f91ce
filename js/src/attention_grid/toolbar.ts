// AttentionGrid's toolbar: image switcher, direction, colour range, scale (and its percentile), colour
// map, overlay opacity, rollout row, PNG. Built once; `syncToolbar` brings it in line with the traits.
import { COLORMAP_OPTIONS } from "../shared/colormap";
import { button, el, select } from "../shared/dom";
import type { ScaleKind } from "../shared/scale";
import type { Traits } from "../shared/traits";
import type { AttentionData } from "./data";
import { SUMMARY_OPTIONS } from "./summary";
import type { AttentionGridTraits, Normalization } from "./traits";

export interface Toolbar {
  image: ReturnType<typeof select>;
  norm: ReturnType<typeof select>;
  scale: ReturnType<typeof select>;
  cmap: ReturnType<typeof select>;
  pct: HTMLInputElement;
  pctField: HTMLLabelElement;
  opacity: HTMLInputElement;
  rollout: HTMLInputElement;
  rolloutField: HTMLLabelElement;
  summary: ReturnType<typeof select>;
  sort: HTMLInputElement;
  sortField: HTMLLabelElement;
  dirRow: HTMLButtonElement;
  dirCol: HTMLButtonElement;
}

const NORMALIZATIONS: { value: Normalization; label: string }[] = [
  { value: "head", label: "per head" },
  { value: "layer", label: "per layer" },
  { value: "global", label: "global" },
];
const SCALES: { value: ScaleKind; label: string }[] = [
  { value: "linear", label: "linear" },
  { value: "log", label: "log" },
  { value: "percentile", label: "percentile clip" },
];

/** Build the controls into `host`; each reports through `set` (one message to Python per change). */
export function buildToolbar(host: HTMLElement, set: (v: Partial<AttentionGridTraits>) => void, exportPng: () => void): Toolbar {
  const image = select("image", [], "0", (v) => set({ image_index: Number(v) }));
  const dirRow = button("query → keys", "where the query token looks (a row of the pattern)", () => set({ direction: "row" }));
  const dirCol = button("queries → key", "who looks at the selected token (a column of the pattern)", () => set({ direction: "column" }));
  const seg = el("span", { cls: "pw-segmented", attrs: { role: "group", "aria-label": "direction" } }, [dirRow, dirCol]);
  const norm = select("colour range", NORMALIZATIONS, "head", (v) => set({ normalization: v }));
  const scale = select("scale", SCALES, "linear", (v) => set({ scale: v }));
  const pct = el("input", { cls: "pw-input", attrs: { type: "number", min: "50", max: "100", step: "0.5" } });
  pct.addEventListener("change", () => {
    const v = Number(pct.value);
    if (Number.isFinite(v) && v >= 50 && v <= 100) set({ percentile: v });
  });
  const pctField = el("label", { cls: "pw-field" }, [el("span", { cls: "pw-field-label", text: "pct" }), pct]);
  const cmap = select("colours", COLORMAP_OPTIONS, "viridis", (v) => set({ colormap: v }));
  const opacity = el("input", { cls: "pw-range", attrs: { type: "range", min: "0", max: "1", step: "0.05" } });
  opacity.addEventListener("input", () => set({ opacity: Number(opacity.value) }));
  const opField = el("label", { cls: "pw-field" }, [el("span", { cls: "pw-field-label", text: "overlay" }), opacity]);
  const rollout = el("input", { attrs: { type: "checkbox" } });
  rollout.addEventListener("change", () => set({ show_rollout: rollout.checked }));
  const rolloutField = el("label", { cls: "pw-field" }, [rollout, el("span", { cls: "pw-field-label", text: "rollout row" })]);
  const summary = select("head summary", SUMMARY_OPTIONS, "none", (v) => set({ summary: v }));
  summary.root.title = "per head, over the images: mean attention distance in patches (local vs global heads), or entropy";
  const sort = el("input", { attrs: { type: "checkbox" } });
  sort.addEventListener("change", () => set({ sort_heads: sort.checked }));
  const sortField = el("label", { cls: "pw-field", title: "order each layer's heads by the summary, smallest first" }, [sort, el("span", { cls: "pw-field-label", text: "sort heads" })]);
  const png = button("PNG", "save the current view (with its colour bar) as a PNG image", exportPng, "pw-ag-png");
  host.append(image.root, seg, norm.root, scale.root, pctField, cmap.root, opField, rolloutField, summary.root, sortField, png);
  return { image, norm, scale, cmap, pct, pctField, opacity, rollout, rolloutField, summary, sort, sortField, dirRow, dirCol };
}

/** Show the traits' values in the controls; hide the image switcher (one image) and rollout box (no rollout). */
export function syncToolbar(c: Toolbar, t: Traits<AttentionGridTraits>, d: AttentionData | null): void {
  if (d) {
    const opts = c.image.input.options;
    if (opts.length !== d.images.length) {
      c.image.input.replaceChildren(...d.images.map((label, i) => el("option", { text: label, attrs: { value: String(i) } })));
    }
    c.image.root.style.display = d.images.length > 1 ? "" : "none";
    c.rolloutField.style.display = d.rollout ? "" : "none";
  }
  c.image.set(String(t.get("image_index") ?? 0));
  c.norm.set(t.get("normalization"));
  c.scale.set(t.get("scale"));
  c.cmap.set(t.get("colormap"));
  c.pctField.style.display = t.get("scale") === "percentile" ? "" : "none";
  if (document.activeElement !== c.pct) c.pct.value = String(t.get("percentile"));
  c.opacity.value = String(t.get("opacity"));
  c.rollout.checked = !!t.get("show_rollout");
  c.summary.set(t.get("summary") ?? "none");
  c.sort.checked = !!t.get("sort_heads");
  c.sortField.style.display = (t.get("summary") ?? "none") === "none" ? "none" : "";
  const dir = t.get("direction");
  c.dirRow.setAttribute("aria-pressed", String(dir !== "column"));
  c.dirCol.setAttribute("aria-pressed", String(dir === "column"));
}
