// Returns what is wrong with the page's layout for a phone: horizontal scroll, small tap targets, unlabelled fields.
() => {
  const problems = [];
  const root = document.documentElement;
  if (root.scrollWidth > window.innerWidth) {
    problems.push(`horizontal scroll: ${root.scrollWidth} > ${window.innerWidth}`);
  }
  const targets = document.querySelectorAll(
    "button, .btn, input:not([type=hidden]), textarea, summary, .topbar a, a.more, a.tap, .chip");
  for (const el of targets) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || getComputedStyle(el).visibility === "hidden") continue;
    if (box.height < 44 || box.width < 44) {
      const name = el.id || el.className || el.tagName;
      problems.push(`small tap target ${name}: ${Math.round(box.width)}x${Math.round(box.height)}`);
    }
  }
  for (const input of document.querySelectorAll("input:not([type=hidden]), textarea")) {
    if (!input.labels || !input.labels.length) problems.push(`no label for #${input.id}`);
  }
  return problems;
}
