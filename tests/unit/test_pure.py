"""Pure helpers: durations, ISO times, ownership markers, retention selection, backoff."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from ansible_collections.savepoint.virt.plugins.module_utils._errors import InvalidRequestError
from ansible_collections.savepoint.virt.plugins.module_utils._model import (
    GuestRef, SnapshotRecord, from_iso, parse_duration, render_tree, to_iso,
)
from ansible_collections.savepoint.virt.plugins.module_utils._ownership import (
    decode_description, encode_description, make_marker,
)
from ansible_collections.savepoint.virt.plugins.module_utils._retention import RetentionRule, select_for_removal
from ansible_collections.savepoint.virt.plugins.module_utils._waiting import WaitPolicy

NOW = datetime.datetime(2026, 11, 25, 12, 0, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize('text,seconds', [
    ('7d', 604800), ('12h', 43200), ('1w2d', 777600), ('90m', 5400), ('3600s', 3600), ('45S', 45),
    ('1d12h', 129600), ('2 h', 7200), ('1w1d1h1m1s', 694861), ('36525d', 36525 * 86400),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize('text', ['7x', 'soon', '', '0', '-1d', '1d-2h', 'd7', '3600', 45, '0s', '1d1d', '1h1d',
                                  '36526d', '999999999d', '9' * 400 + 'd', True, None, '1.5h', '\x00'])
def test_parse_duration_rejects_naming_the_option(text):
    with pytest.raises(InvalidRequestError) as err:
        parse_duration(text, 'older_than')
    assert err.value.msg.startswith('older_than')


def test_iso_round_trip_is_utc_with_z():
    value = datetime.datetime(2026, 1, 2, 3, 4, 5, 999, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    assert to_iso(value) == '2026-01-02T01:04:05Z'
    assert from_iso('2026-01-02T01:04:05Z') == value.replace(microsecond=0)
    assert from_iso('garbage') is None


def test_marker_survives_description_round_trip():
    marker = make_marker('team-a', 'savepoint.virt.snapshot 0.1.0', '2d', now=NOW)
    stored = encode_description('line one\nline two', marker)
    text, back = decode_description(stored)
    assert text == 'line one\nline two'
    assert back.owner == 'team-a' and back.expires_at == NOW + datetime.timedelta(days=2)


@pytest.mark.parametrize('stored', ['', 'plain text', '[savepoint.virt] not json', '[savepoint.virt] {"x": 1}'])
def test_foreign_descriptions_have_no_marker(stored):
    text, marker = decode_description(stored)
    assert marker is None and text == stored


def snap(name, age_days, owner='savepoint.virt', expires_in_days=None):
    created = NOW - datetime.timedelta(days=age_days)
    expires = to_iso(created + datetime.timedelta(days=expires_in_days)) if expires_in_days is not None else None
    return SnapshotRecord(name=name, id=name, created_at=to_iso(created), owner=owner, expires_at=expires)


SNAPS = [snap('a', 10, expires_in_days=1), snap('b', 5), snap('c', 2, expires_in_days=30), snap('d', 1),
         snap('foreign-old', 100, owner=None), snap('team-b', 50, owner='team-b', expires_in_days=1)]


@pytest.mark.parametrize('rule,expected', [
    (RetentionRule(keep_last=2), ['a', 'b']),
    (RetentionRule(keep_last=10), []),
    (RetentionRule(keep_last=0), ['a', 'b', 'c', 'd']),
    (RetentionRule(older_than=datetime.timedelta(days=3)), ['a', 'b']),
    (RetentionRule(expired=True), ['a']),
    (RetentionRule(expired=True, keep_last=3), ['a']),
    (RetentionRule(expired=True, older_than=datetime.timedelta(days=4)), ['a', 'b']),
])
def test_retention_selection(rule, expected):
    chosen = select_for_removal(SNAPS, 'savepoint.virt', rule, NOW)
    assert [c['snapshot'].name for c in chosen] == expected
    assert all(c['reason'] for c in chosen)


def test_retention_never_selects_foreign_snapshots():
    chosen = select_for_removal(SNAPS, 'team-b', RetentionRule(keep_last=0), NOW)
    assert [c['snapshot'].name for c in chosen] == ['team-b']


def test_retention_needs_a_rule():
    with pytest.raises(InvalidRequestError):
        RetentionRule.from_options()
    with pytest.raises(InvalidRequestError):
        RetentionRule.from_options(keep_last=-1)


def test_backoff_grows_with_jitter_and_is_capped():
    delays = WaitPolicy(initial_delay=1, max_delay=8).delays()
    first = [next(delays) for _step in range(8)]
    assert 0.5 <= first[0] <= 1 and 1 <= first[1] <= 2 and 2 <= first[2] <= 4
    assert all(d <= 8 for d in first) and max(first) >= 4


def test_guest_ref_validation():
    assert GuestRef.from_value('web1').name == 'web1'
    assert GuestRef.from_value({'moid': 'vm-42'}).id == 'vm-42'
    with pytest.raises(InvalidRequestError):
        GuestRef.from_value({'name': 'a', 'uuid': 'b'})
    with pytest.raises(InvalidRequestError):
        GuestRef.from_value({'nmae': 'a'})
    with pytest.raises(InvalidRequestError):
        GuestRef.from_value(42)


def test_render_tree_marks_current_and_nests():
    records = [SnapshotRecord(name='a', id='1', created_at='1'),
               SnapshotRecord(name='b', id='2', parent_id='1', current=True, memory=True, created_at='2')]
    assert render_tree(records) == 'a\n  b (current, memory)\n'


def test_a_provider_only_option_for_another_provider_is_refused():
    from ansible_collections.savepoint.virt.plugins.module_utils._module import refuse_foreign_spec_options

    class Plain:
        provider = 'plain'
        spec_options = {}

    class WithVolumes:
        provider = 'cloud'
        spec_options = {'include_volumes': {'type': 'bool', 'default': False}}

    with pytest.raises(InvalidRequestError, match="'include_volumes' is only used by provider cloud, not by plain"):
        refuse_foreign_spec_options({'include_volumes': True}, Plain, [Plain, WithVolumes])
    refuse_foreign_spec_options({'include_volumes': False}, Plain, [Plain, WithVolumes])
    refuse_foreign_spec_options({'include_volumes': None}, Plain, [Plain, WithVolumes])
    refuse_foreign_spec_options({'include_volumes': True}, WithVolumes, [Plain, WithVolumes])


def test_marker_keeps_the_pause_when_taken_and_ignores_an_unreadable_one():
    from ansible_collections.savepoint.virt.plugins.module_utils._model import Marker, SnapshotRecord
    from ansible_collections.savepoint.virt.plugins.module_utils._ownership import (
        decode_description, encode_description,
    )
    marker = Marker(owner='team', created_by='t', guest_blocked_seconds=0.125)
    text, back = decode_description(encode_description('note', marker))
    assert text == 'note' and back.guest_blocked_seconds == 0.125
    record = SnapshotRecord(name='s', id='s')
    record.apply_marker(back)
    assert record.to_dict()['guest_blocked_seconds'] == 0.125
    # a marker written without it (older runs, other providers): unknown, and the key is not written
    plain = Marker(owner='team', created_by='t')
    assert 'guest_blocked_seconds' not in plain.to_dict()
    assert decode_description(encode_description('', plain))[1].guest_blocked_seconds is None
    assert SnapshotRecord(name='f', id='f').to_dict()['guest_blocked_seconds'] is None
    for bad in ('"slow"', 'true', '-1', '1e99', 'null'):
        line = '[savepoint.virt] {"owner":"team","created_by":"t","guest_blocked_seconds":%s}' % bad
        text, read = decode_description(line)
        assert read is not None and read.owner == 'team' and read.guest_blocked_seconds is None, bad


@pytest.mark.parametrize('finish', [0.1, 0.4, 1.0, 2.0, 3.3, 5.0, 17.0, 60.0, 299.0, 3599.0])
def test_a_wait_ends_within_max_10_percent_or_250_ms_of_the_real_end(finish):
    from ansible_collections.savepoint.virt.plugins.module_utils._waiting import wait_until
    now = [0.0]
    polls = []

    def sleep(seconds):
        now[0] += seconds

    def poll():
        polls.append(now[0])
        return now[0] >= finish
    policy = WaitPolicy(timeout=7200, sleep=sleep, clock=lambda: now[0])
    wait_until(poll, policy, 'a snapshot')
    assert now[0] - finish <= max(0.10 * finish, 0.25) + 1e-9
    # A poll that takes time (an API call on a loaded cloud) does not push the next one later: the
    # wait ends within the same bound plus the one poll that sees the end.
    now[0], polls[:] = 0.0, []
    took = 0.08

    def slow_poll():
        polls.append(now[0])
        done = now[0] >= finish
        now[0] += took
        return done
    wait_until(slow_poll, policy, 'a snapshot')
    assert now[0] - finish <= max(0.10 * finish, 0.25) + took + 1e-9, (now[0] - finish, polls[-3:])
    if finish >= 120:
        # and no more polls than openstacksdk's waiter (one every 2 s) over the same wait
        assert len(polls) <= finish / 2, len(polls)


def test_a_record_in_results_is_what_dataclasses_asdict_gives_without_marker_problem_and_shares_nothing():
    record = SnapshotRecord(name='s', id='1', children=['c'], size_bytes=7, marker_problem='unreadable',
                            provider_details={'state': 'poweredOn', 'disks': [{'key': 1, 'chain': ['a']}]})
    expected = dataclasses.asdict(record)
    del expected['marker_problem']
    data = record.to_dict()
    assert data == expected and list(data) == list(expected)
    data['children'].append('x')
    data['provider_details']['disks'][0]['chain'].append('b')
    assert record.children == ['c'] and record.provider_details['disks'][0]['chain'] == ['a']
