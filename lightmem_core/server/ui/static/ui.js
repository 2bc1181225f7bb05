// The inspector's only script, and it is optional: every page works without it.
// "/" focuses the search box of the page (as many sites do); nothing else.
document.addEventListener("keydown", function (event) {
  if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
  var target = event.target;
  if (target && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName))) return;
  var box = document.querySelector("input[type=search]");
  if (box) {
    event.preventDefault();
    box.focus();
    box.select();
  }
});
