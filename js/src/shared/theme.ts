// Light / dark theme that follows the host: an explicit setting, else JupyterLab
// (body[data-jp-theme-light]), VS Code (body.vscode-dark / vscode-high-contrast), Colab
// (html[theme=dark]), else the luminance of the first opaque background around the widget, else the
// browser's prefers-color-scheme.

export type ThemeSetting = "auto" | "light" | "dark";

export interface Theme {
  dark: boolean;
  fg: string;
  muted: string;
  bg: string;
  grid: string;
  accent: string;
  accent2: string;
  font: string;
}

function parseRgb(color: string): [number, number, number, number] | null {
  const m = color.match(/rgba?\(([^)]+)\)/);
  if (!m) return null;
  const parts = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
  return [parts[0], parts[1], parts[2], parts.length > 3 ? parts[3] : 1];
}

function backgroundIsDark(el: Element | null): boolean | null {
  for (let node: Element | null = el; node; node = node.parentElement) {
    const rgb = parseRgb(getComputedStyle(node).backgroundColor);
    if (rgb && rgb[3] > 0.5) {
      const y = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255;
      return y < 0.45;
    }
  }
  return null;
}

export function hostIsDark(el: Element): boolean {
  const body = document.body;
  const jp = body?.getAttribute("data-jp-theme-light");
  if (jp === "false") return true;
  if (jp === "true") return false;
  if (body?.classList.contains("vscode-dark") || body?.classList.contains("vscode-high-contrast")) {
    return !body.classList.contains("vscode-high-contrast-light");
  }
  if (body?.classList.contains("vscode-light")) return false;
  const colab = document.documentElement.getAttribute("theme");
  if (colab === "dark") return true;
  if (colab === "light") return false;
  const bg = backgroundIsDark(el.parentElement);
  if (bg !== null) return bg;
  return typeof matchMedia === "function" && matchMedia("(prefers-color-scheme: dark)").matches;
}

/** Apply the theme classes to the widget root and read back the resolved colours. */
export function applyTheme(root: HTMLElement, setting: ThemeSetting): Theme {
  const dark = setting === "dark" || (setting === "auto" && hostIsDark(root));
  root.classList.toggle("pw-dark", dark);
  root.classList.toggle("pw-forced", setting !== "auto");
  const cs = getComputedStyle(root);
  const v = (name: string, fallback: string) => cs.getPropertyValue(name).trim() || fallback;
  return {
    dark,
    fg: v("--pw-fg", dark ? "#e6e6e6" : "#1f2328"),
    muted: v("--pw-muted", dark ? "#9aa0a6" : "#5f6368"),
    bg: v("--pw-bg", dark ? "#1e1e1e" : "#ffffff"),
    grid: v("--pw-border", dark ? "#3c3c3c" : "#d0d7de"),
    accent: v("--pw-accent", dark ? "#ff8a3d" : "#e8590c"),
    accent2: v("--pw-accent2", dark ? "#4dc9ff" : "#0b72b9"),
    font: v("--pw-font", "system-ui, sans-serif"),
  };
}

/** Call `onChange` when the host's theme may have changed. Returns the disposer. */
export function watchTheme(onChange: () => void): () => void {
  const observer = new MutationObserver(() => onChange());
  if (document.body) observer.observe(document.body, { attributes: true, attributeFilter: ["class", "data-jp-theme-light", "data-jp-theme-name"] });
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ["theme", "class", "style"] });
  const mq = typeof matchMedia === "function" ? matchMedia("(prefers-color-scheme: dark)") : null;
  mq?.addEventListener?.("change", onChange);
  return () => {
    observer.disconnect();
    mq?.removeEventListener?.("change", onChange);
  };
}
