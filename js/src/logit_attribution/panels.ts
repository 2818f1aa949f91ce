// LogitAttribution side panels as DOM: the target picker (a class, and a second one for a difference), the
// largest contributions, and the CLIP prompt editor. User text (class names, prompts) goes in as
// textContent or an input's value, never as HTML.
import { button, el, select, setText } from "../shared/dom";
import type { Traits } from "../shared/traits";
import { type AttributionData, type Selection, className, classOrder, selectionLabel, signed, topComponents } from "./data";
import type { LogitAttributionTraits } from "./traits";

type Set = (v: Partial<LogitAttributionTraits>) => void;

/** The two class pickers: "target" and "minus" (none, or a class for score(target) - score(minus)). */
export class TargetPicker {
  readonly target = select("target", [], "0", (v) => this.set({ target: Number(v) }));
  readonly versus = select("minus", [], "-1", (v) => this.set({ versus: Number(v) }));
  private shown = "";

  constructor(private readonly set: Set) {
    this.target.input.classList.add("pw-la-target");
    this.versus.input.classList.add("pw-la-versus");
  }

  /** Options in score order, each "name (score)"; rebuilt only when the classes or scores change. */
  sync(d: AttributionData | null, t: Traits<LogitAttributionTraits>): void {
    if (d) {
      const order = classOrder(d);
      const key = JSON.stringify([d.classNames, Array.from(d.scores)]);
      if (key !== this.shown) {
        this.shown = key;
        const option = (c: number) => el("option", { text: `${className(d, c)} (${d.scores[c].toFixed(2)})`, attrs: { value: String(c) } });
        this.target.input.replaceChildren(...order.map(option));
        this.versus.input.replaceChildren(el("option", { text: "—", attrs: { value: "-1" } }), ...order.map(option));
      }
    }
    this.target.set(String(t.get("target") ?? 0));
    this.versus.set(String(t.get("versus") ?? -1));
  }
}

/** The largest contributions, as rows: label, value, a bar; click one to select it. */
export function topRows(d: AttributionData, vals: ArrayLike<number>, k: number, selected: Selection, pick: (s: Selection) => void): HTMLElement[] {
  const top = topComponents(d, vals, k);
  const most = Math.max(1e-12, ...top.map((e) => Math.abs(e.value)));
  return top.map((e) => {
    const bar = el("span", { cls: `pw-la-bar ${e.value >= 0 ? "pw-la-pos" : "pw-la-neg"}` });
    bar.style.width = `${Math.round((60 * Math.abs(e.value)) / most)}px`;
    const same = selectionLabel(e.sel) === selectionLabel(selected);
    const row = el("button", {
      cls: "pw-la-top-row",
      title: `select ${selectionLabel(e.sel)}`,
      attrs: { type: "button", "aria-pressed": String(same), "data-label": selectionLabel(e.sel) },
    }, [el("span", { cls: "pw-la-top-name", text: selectionLabel(e.sel) }), el("span", { cls: "pw-la-top-value", text: signed(e.value) }), bar]);
    row.addEventListener("click", () => pick(e.sel));
    return row;
  });
}

/**
 * The prompts of a CLIP attribution. Editable only when the widget holds the model and a kernel: a changed
 * prompt (Enter, or leaving the field) sends the whole list back, and Python recomputes.
 */
export class PromptEditor {
  readonly root: HTMLDivElement;
  private readonly list = el("div", { cls: "pw-la-prompt-list" });
  private readonly note = el("div", { cls: "pw-la-prompt-note" });
  private readonly add: HTMLButtonElement;
  private shown = "";

  constructor(
    private readonly traits: Traits<LogitAttributionTraits>,
    private readonly set: Set,
    private readonly statusEl: HTMLElement,
  ) {
    this.add = button("+ prompt", "add a prompt", () => this.addRow(), "pw-la-add-prompt");
    this.root = el("div", { cls: "pw-la-prompts" }, [el("div", { cls: "pw-la-section-title", text: "prompts" }), this.list, this.add, this.note]);
  }

  sync(): void {
    const t = this.traits;
    const prompts = (t.get("prompts") ?? []).map(String);
    const editable = !!t.get("prompts_editable");
    this.root.style.display = prompts.length ? "" : "none";
    const key = JSON.stringify([prompts, editable]);
    if (key !== this.shown && !this.list.contains(document.activeElement)) {
      this.shown = key;
      this.list.replaceChildren(...prompts.map((p, i) => this.row(p, i, editable, prompts.length)));
    }
    this.add.style.display = editable ? "" : "none";
    setText(this.note, t.get("prompt_note") || (editable ? "edit a prompt and press Enter: the kernel recomputes" : "read-only"));
    const status = t.get("status") ?? "";
    if (status) setText(this.statusEl, status);
    this.statusEl.classList.toggle("pw-la-busy", status !== "");
  }

  private row(text: string, i: number, editable: boolean, n: number): HTMLDivElement {
    const input = el("input", { cls: "pw-input pw-la-prompt-input", attrs: { type: "text", "aria-label": `prompt ${i + 1}` } });
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
    }, "pw-la-remove-prompt");
    remove.disabled = !editable || n <= 1;
    remove.style.display = editable ? "" : "none";
    const row = el("div", { cls: "pw-la-prompt" }, [input, remove]);
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
    const values = Array.from(this.list.querySelectorAll<HTMLInputElement>("input.pw-la-prompt-input")).map((i) => i.value.trim());
    const filled = values.filter((v) => v !== "");
    if (!filled.length || (values[values.length - 1] === "" && filled.length === values.length - 1)) return;
    if (JSON.stringify(filled) === JSON.stringify((this.traits.get("prompts") ?? []).map(String))) return;
    this.shown = "";
    setText(this.statusEl, "recomputing…");
    this.set({ prompts: filled });
  }
}
