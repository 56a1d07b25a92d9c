
(function () {
  function key(cell) {
    if (!cell) return null;
    var v = cell.getAttribute('data-v');
    if (v === null) return cell.textContent.trim().toLowerCase();
    return v === '' ? null : parseFloat(v);
  }
  function sortTable(table, col, th) {
    var desc = th.getAttribute('aria-sort') ? th.getAttribute('aria-sort') === 'ascending'
                                            : th.getAttribute('data-first') === 'desc';
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
    table.querySelectorAll('tbody').forEach(function (body) {
      var rows = Array.prototype.filter.call(body.rows, function (r) {
        return !r.classList.contains('divider');
      });
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null || y === null) return (x === null) - (y === null);
        var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.addEventListener('click', function () { sortTable(table, col, th); });
    });
  });
})();
