// Sort and filter the match cards without a server. The match index is JSON written by the
// report builder (escaped for HTML); each entry names its card by element id.
(function () {
  "use strict";
  var indexElement = document.getElementById("match-index");
  if (!indexElement) { return; }
  var index = JSON.parse(indexElement.textContent);
  var list = document.getElementById("match-list");
  var minScore = document.getElementById("min-score");
  var search = document.getElementById("search");
  var sort = document.getElementById("sort");
  var shown = document.getElementById("shown");
  var orders = {
    "score-desc": function (a, b) { return b.score - a.score; },
    "score-asc": function (a, b) { return a.score - b.score; },
    "rank": function (a, b) {
      return (a.rank || Infinity) - (b.rank || Infinity) || b.score - a.score;
    }
  };

  function update() {
    var lowest = parseFloat(minScore.value);
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    var entries = index.slice().sort(orders[sort.value]);
    var count = 0;
    entries.forEach(function (entry) {
      var card = document.getElementById(entry.id);
      var visible = (isNaN(lowest) || entry.score >= lowest) &&
        words.every(function (word) { return entry.text.indexOf(word) !== -1; });
      card.hidden = !visible;
      count += visible ? 1 : 0;
      list.appendChild(card);
    });
    shown.textContent = count + " of " + index.length + " shown";
  }

  [minScore, search, sort].forEach(function (control) {
    control.addEventListener("input", update);
    control.addEventListener("change", update);
  });
  update();
}());
