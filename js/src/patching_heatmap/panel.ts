// PatchingHeatmap's cell panel as DOM: the selected cell, its effect, the metrics, and the top-k
// predictions of the clean, corrupted and patched runs. Class names go in as textContent.
import { el, setText } from "../shared/dom";
import { formatValue } from "../shared/scale";
import type { Traits } from "../shared/traits";
import { type PatchData, type Top, cellOf, cellTitle, className, patchedTop, valueAt } from "./data";
import type { PatchingHeatmapTraits, Selection } from "./traits";

function table(caption: string): { t: HTMLTableElement; body: HTMLTableSectionElement } {
  const body = el("tbody");
  const t = el("table", { cls: "pw-ph-table" }, [
    el("caption", { cls: "pw-export-text", text: caption }),
    el("thead", {}, [el("tr", {}, [el("th", { text: "#" }), el("th", { text: "class" }), el("th", { text: "p" })])]),
    body,
  ]);
  return { t, body };
}

function fillTable(body: HTMLTableSectionElement, d: PatchData, top: Top[] | null, empty: string): void {
  if (!top || !top.length) {
    body.replaceChildren(el("tr", {}, [el("td", { cls: "pw-ph-empty", text: empty, attrs: { colspan: "3" } })]));
    return;
  }
  body.replaceChildren(
    ...top.map((e, i) =>
      el("tr", {}, [
        el("td", { cls: "pw-export-text", text: String(i + 1) }),
        el("td", { cls: "pw-export-text", text: className(d, e.cls) }),
        el("td", { cls: "pw-export-text", text: e.prob.toFixed(3) }),
      ]),
    ),
  );
}

/** What an effect means in words, on the scale 0 = the corrupted run, 1 = the clean run (both can be passed). */
export function effectWords(v: number): string {
  if (!Number.isFinite(v)) return "not a number";
  if (v > 1.05) return `more than the clean run (${formatValue(v)}× the metric's clean-minus-corrupted gap)`;
  if (v < -0.05) return "further from the clean run than the corrupted run";
  if (Math.abs(v) <= 0.05) return "about none of the clean answer back";
  if (v >= 0.95) return "about all of the clean answer back";
  return `${Math.round(v * 100)}% of the metric's way from the corrupted run to the clean run`;
}

export class CellPanel {
  /** The panel's elements, in order. */
  readonly parts: HTMLElement[];
  private readonly title = el("div", { cls: "pw-ph-label pw-ph-cell-title pw-export-text" });
  private readonly effect = el("div", { cls: "pw-ph-effect pw-export-text" });
  private readonly metric = el("div", { cls: "pw-ph-metric pw-export-text" });
  private readonly note = el("div", { cls: "pw-ph-pred-note" });
  private readonly tables: Record<"clean" | "corrupted" | "patched", HTMLTableSectionElement>;

  constructor() {
    const clean = table("clean run");
    const corrupted = table("corrupted run");
    const patched = table("patched run (this cell)");
    patched.t.classList.add("pw-ph-patched");
    this.tables = { clean: clean.body, corrupted: corrupted.body, patched: patched.body };
    this.parts = [this.title, this.effect, this.metric, clean.t, corrupted.t, patched.t, this.note];
  }

  /** Show the selected cell; returns whether the patched run's predictions are there. */
  draw(d: PatchData, sel: Selection | null, t: Traits<PatchingHeatmapTraits>): boolean {
    const c = sel ? cellOf(d, sel) : null;
    if (!sel || !c) {
      setText(this.title, "click a cell");
      setText(this.effect, "");
      fillTable(this.tables.patched, d, null, "no cell selected");
      return false;
    }
    setText(this.title, cellTitle(d, sel));
    const method = t.get("method") ?? "exact";
    const v = valueAt(d, c.lp, c.cell);
    setText(this.effect, `effect ${formatValue(v)}: ${effectWords(v)} (${method === "exact" ? "exact" : "attribution estimate"}; 0 = corrupted run, 1 = clean run)`);
    const cm = Number(t.get("clean_metric") ?? 0);
    const km = Number(t.get("corrupted_metric") ?? 0);
    setText(this.metric, `metric: clean ${formatValue(cm)}, corrupted ${formatValue(km)}`);
    const noClasses = d.classNames.length === 0 ? "no class read-out" : "not available";
    fillTable(this.tables.clean, d, d.cleanTop, noClasses);
    fillTable(this.tables.corrupted, d, d.corruptedTop, noClasses);
    const top = d.classNames.length ? patchedTop(d, c.lp, c.cell, t.get("selected_top")) : null;
    const waiting = t.get("interactive") ? "computing in the kernel…" : "not precomputed for this cell";
    fillTable(this.tables.patched, d, top, d.classNames.length ? waiting : noClasses);
    const note = t.get("predictions_note") ?? "";
    setText(this.note, note);
    this.note.style.display = note ? "" : "none";
    return !!top && top.length > 0;
  }
}
