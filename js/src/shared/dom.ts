// Tiny DOM helpers. Text always goes in with textContent (never innerHTML), classes are prefixed
// `pw-`, and nothing uses a global id: many widgets can live in one page.

export interface ElOptions {
  cls?: string;
  text?: string;
  title?: string;
  attrs?: Record<string, string>;
}

export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  opts: ElOptions = {},
  children: (Node | null | undefined)[] = [],
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (opts.cls) node.className = opts.cls;
  if (opts.text !== undefined) node.textContent = opts.text;
  if (opts.title !== undefined) node.title = opts.title;
  if (opts.attrs) for (const [k, v] of Object.entries(opts.attrs)) node.setAttribute(k, v);
  for (const c of children) if (c) node.appendChild(c);
  return node;
}

export function setText(node: Element, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** A labelled <select>; `onChange` gets the chosen option's value (typed as the options' values). */
export function select<V extends string = string>(
  label: string,
  options: readonly { value: V; label: string }[],
  value: V,
  onChange: (v: V) => void,
): { root: HTMLLabelElement; input: HTMLSelectElement; set(v: string): void } {
  const input = el("select", { cls: "pw-select" });
  for (const o of options) input.appendChild(el("option", { text: o.label, attrs: { value: o.value } }));
  input.value = value;
  input.addEventListener("change", () => onChange(input.value as V));
  const root = el("label", { cls: "pw-field" }, [el("span", { cls: "pw-field-label", text: label }), input]);
  return {
    root,
    input,
    set(v: string) {
      if (input.value !== v) input.value = v;
    },
  };
}

export function button(text: string, title: string, onClick: (ev: MouseEvent) => void, cls = ""): HTMLButtonElement {
  const b = el("button", { cls: `pw-button ${cls}`.trim(), text, title, attrs: { type: "button" } });
  b.addEventListener("click", onClick);
  return b;
}
