declare module "pw-widget-entry" {
  const widget: { render: (props: { model: unknown; el: HTMLElement }) => unknown };
  export default widget;
}
declare module "*.css";
