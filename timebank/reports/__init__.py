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

Group sessions, gifts, the pot, leaving and opening balances
    Each leg of a group session is an ordinary exchange row (``exchanges.group_id`` set)
    between the session's host and one attendee, and counts as an exchange between those two
    in every figure here (minutes, exchanges, partners, reciprocity, active, reciprocal, ties,
    first exchanges, categories, flows), under the same rule "as of" T: its legs are approved
    together and reversed together (PostgreSQL holds them to it, ``exchange_groups_check``),
    so a session counts as of T exactly when its legs do, in the period of its service date
    (every leg has the session's date and category). Nothing in the figures below needed to
    change for it: they read every exchange row, and a leg is one.

    Gifts (member to member, member to the pot), grants from the pot, the balance moved when
    someone leaves and opening balances are transfers of their own kinds, not exchanges: they
    count in none of the figures above (nobody becomes active, reciprocal, tied or has a first
    exchange by a gift), and in none of the reciprocity report. Leaving and opening balances
    count nowhere in the reports. Gifts and grants count only in the contribution figures
    below. A gift or grant counts as of T when it was created at or before T
    (``gifts.created_at``; they are never reversed), on the UTC date of its creation (it has
    no service date), and never counts twice.

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
    exchanges, people (distinct participants taking part);
    gifted_minutes, gifted_hours: minutes of gifts from a member to a member (``gifts`` of
    kind 'gift' with a recipient); gifted_to_pot_minutes, gifted_to_pot_hours: of gifts to
    the pot (kind 'gift', no recipient); granted_minutes, granted_hours: of grants from the
    pot (kind 'grant'); each by the day of the gift;
    sessions: group sessions whose legs count, by service date; session_attendances: their
    legs counted (one per attendee); session_minutes, session_hours: the minutes of those
    legs (also part of minutes above).
    Every share is 0 when its denominator is 0.

Periods and dates
    Reports cover service dates from 2000-01-01 to 2999-12-31 and at most ten years; a day
    outside is refused (422, naming ``from`` or ``to``).

Funder view
    Aggregates only: no names, no ids. Funders always get it; coordinators and admins may ask
    for it (``view=funder``) as a preview, under the same rules.

    What is published. Funder figures are published once a month: the publication of month M
    happens at R = the first moment (UTC) of month M+1 plus ``TIMEBANK_REPORT_PUBLISH_AFTER_DAYS``
    (default 7, time for late entries to be approved), and covers every whole calendar month,
    quarter and year that ended by the end of M. A funder asks only for one of these periods
    (by default the latest published quarter), with the series by month. A funder's ``as_of``
    is refused (422), as is any other period or interval, so no choice of moment or of period
    boundaries gives a funder a figure that is not part of a publication. The coordinators'
    full view is unchanged: any period, any interval, any ``as_of``.

    Frozen at first publication (``reports.frozen``). What a funder was shown never changes,
    so no two publications differ by what was approved, reversed or enrolled late. A month
    counts as of its first publication R(M) (``as_of`` in the answer). A quarter or a year
    counts as of its own first publication (that of its last month) for what is not a sum
    (active, reciprocal, ties, people per category or flow, the median), and its sums
    (minutes, hours, exchanges, first exchanges, new people, per category and per flow) are
    those of its months as published; its series is its months as published. New people in a
    month are those enrolled at its end less those enrolled at the end of the month before,
    each as first published: a late joiner (a past joining day) counts as new in the month
    they were enrolled. Gifts and grants are never late (one created by R(M) on a day of M
    counts; one created later falls on a later day); sessions are frozen like exchanges, a
    quarter's or a year's session figures being the sums of its months as published. An
    exchange approved or reversed after its month was published never reaches funder figures;
    the full view counts it. Where a quarter's or a year's sum differs from its own count made
    at its publication (something came late), that count of people
    can include people whose late exchanges the sum leaves out, so the sum is then
    primary-suppressed unless one of its months as published rests on k people
    (``frozen.fewest_people``).

    Primary suppression. A cell is withheld (its value null, its name listed in the row's
    ``suppressed``) when it rests on fewer than k = ``TIMEBANK_REPORT_MIN_CELL`` people
    (default 5):
    - participants, active, new, reciprocal, first_exchanges: when the count itself is below k;
    - minutes, hours, exchanges, ties: when the bucket's active count is below k;
    - two_way_ties, two_way_tie_share: when active is below k, or when two_way_ties is at most
      (k-1)(k-2)/2, the most pairs fewer than k people can form (so more two-way ties than
      that always involve at least k people);
    - median_days_to_first_exchange: when first_exchanges is withheld;
    - a category or flow row: every figure of it (people included) when its people are below k;
    - gifted_minutes, gifted_hours: when the distinct givers or the distinct recipients of
      the bucket's gifts between members are below k;
    - gifted_to_pot_minutes, gifted_to_pot_hours: when the distinct givers to the pot are
      below k;
    - granted_minutes, granted_hours: when the distinct recipients of grants are below k;
    - sessions, session_attendances, session_minutes, session_hours: when the distinct
      participants taking part in the bucket's counted legs (hosts and attendees) are below k.
    These people counts are not shown; the cells rest on them.
    A share is withheld whenever its numerator or denominator is (active_share: active,
    participants; new_share: new, participants; reciprocal_share: reciprocal, active), so
    that a share never turns a shown figure into a withheld one.

    Complementary (secondary) suppression. A funder can add and subtract what one publication
    shows. The linear relations they can form are, for the calendar year of each published
    period (every published month, quarter and the year, protected together in one table):
    - a period's minutes (and exchanges) = the sum over its categories = the sum over its
      flows (a category or flow absent from a period is known to be 0);
    - a quarter = the sum of its months, a year = the sum of its quarters, for the minutes in
      all, for each category, for each flow, for first_exchanges, for the minutes gifted,
      gifted to the pot and granted, and for the minutes in sessions (the series of a
      period shows its months, which are the same cells as the months' own reports);
    - and over all months from the first enrolment (the count before 2000 taken as known):
      participants at the end of month m = participants at the end of m-1 + new in m; new in
      a quarter or year = the sum of its months; a period's participants is its last month's.
    Two periods a funder may ask for are nested or disjoint, so any difference of two is a
    sum of these relations. Write x for the withheld cells and A x = b for these relations
    with the shown cells moved to b: a withheld cell x_i can be recomputed exactly when the
    unit vector e_i lies in the row space of A (every solution agrees on x_i); the check is
    done by singular value decomposition (``suppression.recoverable``). Starting from the
    primary cells: first, while some relation has exactly one withheld non-zero cell, its
    smallest shown non-zero cell is withheld too; then, while some withheld non-zero cell is
    still recoverable, the smallest shown non-zero cell sharing a relation with it is
    withheld too (cells rest on nobody when they are 0, so 0 needs no protection). The same
    data gives the same cells. The result: no withheld non-zero cell
    of one publication follows from its shown cells by adding and subtracting. Hours are
    minutes / 60 rounded to 0.01 (one-to-one with minutes) and are withheld with them;
    exchanges share the minutes' pattern, as sessions and session_attendances share the
    session minutes' pattern (each is 0 exactly when the minutes are).

    Withholding only grows. A funder may keep every publication and read them together, so
    each publication starts from the earlier ones: the table ``published_cells`` records,
    cell by cell, what the timebank's publications showed and withheld (no names, only
    figures, periods and category slugs or flow kinds), and is written, under a lock per
    timebank, before any figure of the publication is given out. The next publication withholds
    every cell an earlier one withheld; it counts every cell an earlier one showed with the value
    it still has (``published_cells.shown_value``), and every cell that follows from those
    alone, as known to the funder, so it never chooses one of them to hide another, and the
    exact check treats them as shown; a cell whose value has changed since is not known at its
    new value. A cell once withheld is never
    recorded as shown again (PostgreSQL refuses it). Since the figures of a closed month do
    not change unless entries are approved or reversed late, the cells a later publication
    adds (the new month, and the quarter and year it completes) are the only ones it needs to
    choose among; ``tests/reports/test_disclosure.py`` reads three consecutive publications of
    400 random timebanks together and finds nothing withheld that can be worked out. Every
    worker and instance reads the same record, so they all withhold the same cells.

    Why suppression rather than controlled rounding: funders need exact hours for their own
    accounts and small timebanks have few cells, where rounding to a base of k would distort
    most figures; suppression keeps every shown figure exact, and a table of this size (a
    year: 17 periods by categories and flows) is checked exactly in milliseconds.

    Not covered by the guarantee: figures that are not sums (active, reciprocal, ties,
    two_way_ties, people per category or flow, medians) are protected by primary suppression
    only, and bounds (a withheld cell lies between 0 and a shown total) are not hidden;
    and what came late is left out of funder figures rather than shown.
"""
