// The budget form's running total (progressive enhancement: the form works without it,
// and the API checks the total whatever this says).
(function () {
  var form = document.querySelector('form.ballot[data-method="budget"]');
  var shown = form && form.querySelector(".budget");
  if (!shown) return;
  var budget = Number(shown.dataset.budget);
  var remaining = shown.querySelector(".remaining");
  var boxes = form.querySelectorAll("input[data-cost]");
  var format = new Intl.NumberFormat(document.documentElement.lang);
  function update() {
    var spent = 0;
    boxes.forEach(function (b) { if (b.checked) spent += Number(b.dataset.cost); });
    remaining.textContent = format.format(budget - spent);
    remaining.classList.toggle("over", spent > budget);
  }
  boxes.forEach(function (b) { b.addEventListener("change", update); });
  update();
})();
