// The mirror in Datasette: fold a table's column descriptions under one line, opened on demand.
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("dl.column-descriptions").forEach((list) => {
    const details = document.createElement("details");
    details.className = "column-help";
    const summary = document.createElement("summary");
    summary.textContent = `What the ${list.querySelectorAll("dt").length} columns mean`;
    list.replaceWith(details);
    details.append(summary, list);
  });
});
