// LogitLens side panels as DOM: the legend of top-1 classes, the top-k table of a token, and the prompt
// editor of a CLIP lens. User text (class names, prompts) goes in as textContent or an input's value.
import { button, el, setText } from "../shared/dom";
import { cssRgb } from "../shared/raster";
import type { Traits } from "../shared/traits";
import { type LensData, className, colourOf, legendPos, topAt } from "./data";
import { OTHER, classColor } from "./layout";
import type { LogitLensTraits, Mode } from "./traits";

function swatch(color: [number, number, number]): HTMLSpanElement {
  const sw = el("span", { cls: "pw-ll-swatch" });
  sw.style.background = cssRgb(color);
  return sw;
}

/**
 * The legend: classes top-1 somewhere at this layer, most frequent first, then "other classes" (those
 * without a colour of their own); in class_prob mode the mapped class leads even where it is top-1 nowhere.
 */
export function legendItems(d: LensData, counts: Map<number, number>, mode: Mode, tp: number, pick: (cls: number) => void): HTMLElement[] {
  const entries = [...counts.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0]);
  const items: HTMLElement[] = [];
  let other = 0;
  for (const [cls, n] of entries) {
    const pos = legendPos(d, cls);
    const col = colourOf(d, cls);
    if (pos < 0 || col === OTHER) {
      other += n;
      if (pos < 0) continue;
    }
    const b = el("button", {
      cls: "pw-ll-legend-item",
      title: `${className(d, cls)}: top-1 at ${n} patch${n === 1 ? "" : "es"}; click to map its probability`,
      attrs: { type: "button", role: "listitem", "data-class": String(cls) },
    });
    b.append(swatch(col), el("span", { cls: "pw-ll-legend-name", text: className(d, cls) }), el("span", { cls: "pw-ll-legend-count", text: String(n) }));
    b.setAttribute("aria-pressed", String(mode === "class_prob" && pos === tp));
    b.addEventListener("click", () => pick(cls));
    items.push(b);
  }
  if (other > 0) {
    items.push(el("div", { cls: "pw-ll-legend-item pw-ll-legend-other" }, [swatch(classColor(-1)), el("span", { cls: "pw-ll-legend-name", text: "other classes" }), el("span", { cls: "pw-ll-legend-count", text: String(other) })]));
  }
  if (mode === "class_prob" && tp >= 0 && !counts.has(d.classIds[tp])) {
    const cls = d.classIds[tp];
    const b = el("div", { cls: "pw-ll-legend-item", attrs: { "aria-pressed": "true", "data-class": String(cls) } }, [swatch(colourOf(d, cls)), el("span", { cls: "pw-ll-legend-name", text: className(d, cls) }), el("span", { cls: "pw-ll-legend-count", text: "0" })]);
    items.unshift(b);
  }
  return items;
}

/** The top-k classes of a token at a layer position, as table rows. */
export function topRows(d: LensData, lp: number, token: number): HTMLTableRowElement[] {
  return topAt(d, lp, token).map((e, i) =>
    el("tr", {}, [
      el("td", { text: String(i + 1) }),
      el("td", { cls: "pw-ll-table-class" }, [swatch(colourOf(d, e.cls)), el("span", { text: className(d, e.cls) })]),
      el("td", { cls: "pw-ll-table-p", text: e.prob.toFixed(3) }),
    ]),
  );
}

/**
 * The prompts of a CLIP lens. Editable only when the widget holds the model and a kernel: a changed
 * prompt (Enter, or leaving the field) sends the whole list back, and Python recomputes the lens.
 */
export class PromptPanel {
  readonly root: HTMLDivElement;
  private readonly list: HTMLDivElement;
  private readonly note: HTMLDivElement;
  private readonly add: HTMLButtonElement;
  private shown = "";

  constructor(
    private readonly traits: Traits<LogitLensTraits>,
    private readonly set: (v: Partial<LogitLensTraits>) => void,
    private readonly statusEl: HTMLDivElement,
    private readonly data: () => LensData | null,
  ) {
    this.list = el("div", { cls: "pw-ll-prompt-list" });
    this.note = el("div", { cls: "pw-ll-prompt-note pw-hint" });
    this.add = button("+ prompt", "add a prompt", () => this.addRow(), "pw-ll-add-prompt");
    this.root = el("div", { cls: "pw-ll-prompts" }, [el("div", { cls: "pw-ll-section-title", text: "prompts" }), this.list, this.add, this.note]);
  }

  /** Rebuild the rows on the next sync even when the prompts did not change (new data: new swatches). */
  reset(): void {
    this.shown = "";
  }

  sync(): void {
    const t = this.traits;
    const prompts = (t.get("prompts") ?? []).map(String);
    const editable = !!t.get("prompts_editable");
    this.root.style.display = prompts.length ? "" : "none";
    const key = JSON.stringify([prompts, editable]);
    const focused = this.list.contains(document.activeElement);
    if (key !== this.shown && !focused) {
      this.shown = key;
      this.list.replaceChildren(...prompts.map((p, i) => this.row(p, i, editable, prompts.length)));
    }
    this.add.style.display = editable ? "" : "none";
    const note = t.get("prompt_note") || (editable ? "edit a prompt and press Enter: the kernel recomputes the lens" : "read-only");
    setText(this.note, note);
    this.note.classList.toggle("pw-ll-readonly", !editable);
    const status = t.get("status") ?? "";
    setText(this.statusEl, status);
    this.statusEl.classList.toggle("pw-ll-busy", status !== "");
  }

  private row(text: string, i: number, editable: boolean, n: number): HTMLDivElement {
    const d = this.data();
    const input = el("input", { cls: "pw-input pw-ll-prompt-input", attrs: { type: "text", "aria-label": `prompt ${i + 1}` } });
    input.value = text;
    input.readOnly = !editable;
    input.addEventListener("change", () => this.submit());
    input.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter") {
        ev.preventDefault();
        input.blur();
      }
    });
    const remove = button("×", "remove this prompt", () => {
      row.remove();
      this.submit();
    }, "pw-ll-remove-prompt");
    remove.disabled = !editable || n <= 1;
    remove.style.display = editable ? "" : "none";
    const row = el("div", { cls: "pw-ll-prompt" }, [swatch(d ? colourOf(d, i) : classColor(i)), input, remove]);
    return row;
  }

  private addRow(): void {
    const n = this.list.children.length;
    const row = this.row("", n, true, n + 1);
    this.list.appendChild(row);
    row.querySelector("input")?.focus();
  }

  private submit(): void {
    if (!this.traits.get("prompts_editable")) return;
    const values = Array.from(this.list.querySelectorAll<HTMLInputElement>("input.pw-ll-prompt-input")).map((i) => i.value.trim());
    const filled = values.filter((v) => v !== "");
    if (!filled.length) return;
    if (values.some((v) => v === "") && filled.length === values.length - 1 && values[values.length - 1] === "") return; // a new, still empty row
    const current = (this.traits.get("prompts") ?? []).map(String);
    if (JSON.stringify(filled) === JSON.stringify(current)) return;
    this.shown = "";
    setText(this.statusEl, "recomputing…");
    this.set({ prompts: filled });
  }
}
