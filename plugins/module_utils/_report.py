# -*- coding: utf-8 -*-
# Copyright: savepoint.virt contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The estate-wide snapshot report: snapshot_info results -> rows -> JSON,
a text table and one self-contained, sortable HTML page.

Pure logic (no Ansible import); the report playbook reaches it through the
savepoint.virt.snapshot_report* filters.
"""

from __future__ import annotations

import datetime
import html
import json
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._model import from_iso, to_iso, utcnow

#: (row key, column title) of the table and the page, in order.
COLUMNS = (
    ('host', 'host'), ('guest', 'guest'), ('provider', 'provider'), ('name', 'snapshot'),
    ('age', 'age'), ('size', 'size'), ('pause', 'pause when taken'), ('owner', 'owner'),
    ('expires_at', 'expires'), ('status', 'status'),
)


def human_age(seconds: Optional[float]) -> str:
    if seconds is None:
        return 'unknown'
    seconds = max(0, int(seconds))
    parts = []
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60), ('s', 1)):
        if seconds >= size or (unit == 's' and not parts):
            parts.append('%d%s' % (seconds // size, unit))
            seconds %= size
        if len(parts) == 2:
            break
    return ' '.join(parts)


def human_size(size: Optional[int]) -> str:
    if size is None:
        return 'unknown'
    value = float(size)
    for unit in ('B', 'KiB', 'MiB', 'GiB', 'TiB'):
        if value < 1024 or unit == 'TiB':
            return ('%d %s' % (value, unit)) if unit == 'B' else ('%.1f %s' % (value, unit))
        value /= 1024
    return '%d B' % size  # not reached


def pause_text(snap: Mapping[str, Any]) -> str:
    """How the guest was held while the snapshot was taken, from what the snapshot records.

    The pause is measured when savepoint.virt takes a snapshot and kept in its marker (libvirt); for
    any other snapshot it is unknown -- said so, never shown as 0."""
    seconds = snap.get('guest_blocked_seconds')
    if seconds is not None:
        return '%.3fs' % float(seconds)
    state = snap.get('power_state') or 'unknown'
    if state == 'off':
        return 'none (guest off)'
    if state == 'unknown':
        return 'unknown'
    # no pause time recorded: say what is known (the guest's state, memory saved or not)
    return 'unknown (%s%s)' % (state, ' + memory' if snap.get('memory') else '')


def _host_for(batch: Mapping[str, Any], index: int, guest: Mapping[str, Any]) -> str:
    hosts = list(batch.get('hosts') or [])
    refs = list(batch.get('guests') or [])
    for host, ref in zip(hosts, refs):
        if ref.get('name') and ref.get('name') == guest.get('name'):
            return host
        if (ref.get('uuid') or ref.get('id')) and (ref.get('uuid') or ref.get('id')) == guest.get('id'):
            return host
    # find_guests answers in the order of the request
    return hosts[index] if index < len(hosts) else guest.get('name', '')


def rows(batches: Sequence[Mapping[str, Any]], now: Optional[datetime.datetime] = None) -> List[Dict[str, Any]]:
    """One row per snapshot. ``batches``: [{provider, hosts, guests, info: <snapshot_info result>}]."""
    now = now or utcnow()
    out: List[Dict[str, Any]] = []
    for batch in batches:
        info = batch.get('info') or {}
        for index, entry in enumerate(info.get('guests') or []):
            guest = entry.get('guest') or {}
            host = _host_for(batch, index, guest)
            for snap in entry.get('snapshots') or []:
                created = from_iso(snap.get('created_at'))
                expires = from_iso(snap.get('expires_at'))
                age = (now - created).total_seconds() if created else None
                expired = expires is not None and expires <= now
                out.append({
                    'host': host, 'guest': guest.get('name'), 'guest_id': guest.get('id'),
                    'provider': info.get('provider') or batch.get('provider'),
                    'name': snap.get('name'), 'id': snap.get('id'), 'current': bool(snap.get('current')),
                    'created_at': snap.get('created_at'),
                    'age_seconds': None if age is None else int(age), 'age': human_age(age),
                    'size_bytes': snap.get('size_bytes'), 'size': human_size(snap.get('size_bytes')),
                    'memory': bool(snap.get('memory')), 'power_state': snap.get('power_state'),
                    'pause_seconds': snap.get('guest_blocked_seconds'), 'pause': pause_text(snap),
                    'owner': snap.get('owner'), 'created_by': snap.get('created_by'),
                    'expires_at': snap.get('expires_at'), 'expired': expired,
                    'status': 'EXPIRED' if expired else ('owned' if snap.get('owner') else 'not owned'),
                })
    out.sort(key=lambda r: (r['provider'] or '', r['host'] or '', r['created_at'] or '', r['name'] or ''))
    return out


def document(report_rows: Sequence[Mapping[str, Any]], now: Optional[datetime.datetime] = None) -> Dict[str, Any]:
    """What snapshots.json holds."""
    expired = sum(1 for r in report_rows if r.get('expired'))
    return {'generated_at': to_iso(now or utcnow()), 'count': len(report_rows), 'expired': expired,
            'snapshots': list(report_rows)}


def _cell(row: Mapping[str, Any], key: str) -> str:
    value = row.get(key)
    if key == 'owner' and not value:
        return '-'
    if key == 'expires_at' and not value:
        return 'never'
    if key == 'name' and row.get('current'):
        return '%s *' % value
    return '' if value is None else str(value)


def table(report_rows: Sequence[Mapping[str, Any]]) -> str:
    """A plain-text table for the job log (``*`` marks a guest's current snapshot)."""
    if not report_rows:
        return 'no snapshots on these guests'
    grid = [[title for _key, title in COLUMNS]] + [[_cell(r, key) for key, _t in COLUMNS] for r in report_rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(COLUMNS))]
    lines = ['  '.join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in grid]
    lines.insert(1, '  '.join('-' * w for w in widths))
    expired = sum(1 for r in report_rows if r.get('expired'))
    lines.append('%d snapshot%s, %d expired' % (len(report_rows), '' if len(report_rows) == 1 else 's', expired))
    return '\n'.join(lines)


#: sort key of a column where the shown text does not sort (ages, sizes, times).
_SORT_KEYS = {'age': 'age_seconds', 'size': 'size_bytes', 'pause': 'pause_seconds'}

_STYLE = '''
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em} p.summary{margin:.3em 0 1em}
table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;white-space:nowrap}
th{background:#eee;cursor:pointer;user-select:none} th[aria-sort=ascending]::after{content:" \\25B2"}
th[aria-sort=descending]::after{content:" \\25BC"}
tr.expired td{background:#ffc9c9;color:#7a0000;font-weight:bold}
td.num{text-align:right}
'''

_SCRIPT = '''
(function(){
  var table=document.getElementById('snapshots'), body=table.tBodies[0];
  Array.prototype.forEach.call(table.tHead.rows[0].cells,function(th,col){
    th.addEventListener('click',function(){
      var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
      Array.prototype.forEach.call(table.tHead.rows[0].cells,function(o){o.removeAttribute('aria-sort');});
      th.setAttribute('aria-sort',dir===1?'ascending':'descending');
      var numeric=th.getAttribute('data-type')==='number';
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[col].getAttribute('data-sort'), y=b.cells[col].getAttribute('data-sort');
        if(numeric){x=x===''?-1:parseFloat(x); y=y===''?-1:parseFloat(y); return (x-y)*dir;}
        return x.localeCompare(y)*dir;
      });
      rows.forEach(function(r){body.appendChild(r);});
      try{history.replaceState(null,'','#sort='+th.getAttribute('data-key')+(dir===1?'':'-desc'));}catch(e){}
    });
  });
  // a link such as snapshots.html#sort=age-desc opens the page sorted
  var m=/^#sort=([a-z_]+?)(-desc)?$/.exec(location.hash);
  if(m){var th=table.querySelector('th[data-key="'+m[1]+'"]');
    if(th){th.click(); if(m[2]){th.click();}}}
})();
'''


def page(report_rows: Sequence[Mapping[str, Any]], now: Optional[datetime.datetime] = None) -> str:
    """snapshots.html: one page, no external asset (style and script inline), sortable by any column."""
    esc = html.escape
    doc = document(report_rows, now)
    head = ''.join('<th data-key="%s" data-type="%s">%s</th>'
                   % (esc(key), 'number' if key in _SORT_KEYS else 'text', esc(title)) for key, title in COLUMNS)
    body = []
    for row in report_rows:
        cells = []
        for key, _title in COLUMNS:
            sort = row.get(_SORT_KEYS.get(key, key))
            if key == 'expires_at' and sort is None:
                sort = '9999'
            sort_text = '' if sort is None else str(sort)
            cls = ' class="num"' if key in _SORT_KEYS else ''
            cells.append('<td data-key="%s" data-sort="%s"%s>%s</td>'
                         % (esc(key), esc(sort_text), cls, esc(_cell(row, key))))
        body.append('<tr class="%s" data-provider="%s" data-guest="%s" data-snapshot="%s">%s</tr>'
                    % ('expired' if row.get('expired') else 'ok', esc(str(row.get('provider') or '')),
                       esc(str(row.get('guest') or '')), esc(str(row.get('name') or '')), ''.join(cells)))
    summary = '%d snapshot%s on %d guest%s, %d expired; generated %s' % (
        doc['count'], '' if doc['count'] == 1 else 's',
        len({(r.get('provider'), r.get('guest_id')) for r in report_rows}),
        '' if len({(r.get('provider'), r.get('guest_id')) for r in report_rows}) == 1 else 's',
        doc['expired'], doc['generated_at'])
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            'style-src \'unsafe-inline\'; script-src \'unsafe-inline\'">'
            '<title>savepoint.virt snapshot report</title><style>%s</style></head><body>'
            '<h1>Snapshots</h1><p class="summary" id="summary">%s</p>'
            '<table id="snapshots"><thead><tr>%s</tr></thead><tbody>%s</tbody></table>'
            '<script>%s</script></body></html>\n'
            % (_STYLE, esc(summary), head, ''.join(body), _SCRIPT))


def as_json(report_rows: Sequence[Mapping[str, Any]], now: Optional[datetime.datetime] = None) -> str:
    return json.dumps(document(report_rows, now), indent=2, sort_keys=True) + '\n'


def prune_lines(result: Mapping[str, Any], check_mode: bool = False) -> List[str]:
    """One line per guest of a state=pruned result: what went (or would go, in check mode) and why."""
    provider = result.get('provider') or ''
    lines = []
    for entry in result.get('results') or []:
        guest = (entry.get('guest') or {}).get('name')
        removed = [s.get('name') for s in entry.get('removed') or []]
        if removed:
            verb = 'would remove' if check_mode or str(entry.get('action', '')).startswith('would') else 'removed'
            lines.append('%s %s: %s %s -- %s' % (provider, guest, verb, ', '.join(removed), entry.get('msg')))
        else:
            lines.append('%s %s: %s' % (provider, guest, entry.get('msg')))
    return lines
