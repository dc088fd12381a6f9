"""Reciprocity and contribution reports (DESIGN.md §3): what each participant gives and
receives, and what a timebank adds up to, in figures a funder can trust.

What is counted
    An exchange counts "as of" a moment T when it was approved at or before T and not reversed
    at or before T (``exchanges.approved_at`` / ``reversed_at``, stamped by PostgreSQL). It
    counts in the period of its service date, so a reversal takes it out of its original
    period. Participants count when they were enrolled (``created_at``) at or before T. Asking
    again with the same T gives the same figures, whatever is logged, approved or reversed
    later. T defaults to a few seconds ago (never later), so that a transaction still in flight
    cannot change a report after it was given.

Participant figures (period P)
    given_minutes, received_minutes, exchanges_given, exchanges_received; partners: distinct
    counterparties; reciprocal: gave and received at least once; reciprocity:
    min(given, received) / max(given, received) in minutes, 0 when both are 0.

Timebank figures (for the whole period and for each bucket of the series; buckets are calendar
months, ISO weeks or quarters, clipped to the period)
    minutes, hours (minutes / 60), exchanges;
    participants: enrolled with joined_on on or before the bucket's last day;
    active: took part in at least one counted exchange in the bucket; active_share = active /
    participants;
    new: joined_on within the bucket; new_share = new / participants;
    reciprocal: both gave and received in the bucket; reciprocal_share = reciprocal / active;
    ties: unordered pairs who exchanged in the bucket; two_way_ties: pairs who exchanged in
    both directions in it; two_way_tie_share = two_way_ties / ties;
    first_exchanges: participants whose first counted exchange ever falls in the bucket;
    median_days_to_first_exchange: the median, over them, of days from joined_on to that first
    exchange (never below 0);
    by category and by flow between kinds (giver kind -> receiver kind): minutes, hours,
    exchanges, people (distinct participants taking part).
    Every share is 0 when its denominator is 0.

Funder view
    Aggregates only: no names, no ids. A cell is suppressed (its value null, its name listed in
    the row's ``suppressed``) when it rests on fewer than k = ``TIMEBANK_REPORT_MIN_CELL``
    people (default 5):
    - participants, active, new, reciprocal, first_exchanges: when the count itself is below k;
    - minutes, hours, exchanges, ties: when the bucket's active count is below k;
    - two_way_ties, two_way_tie_share: when active is below k, or when two_way_ties is at most
      (k-1)(k-2)/2, the most pairs fewer than k people can form (so more two-way ties than
      that always involve at least k people);
    - active_share, new_share, reciprocal_share: when its numerator or denominator is
      suppressed;
    - median_days_to_first_exchange: when first_exchanges is below k;
    - a category or flow row: every figure of it (people included) when its people are below k.
"""
