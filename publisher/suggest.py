"""Did-you-mean: the closest known name to a typo, for one-line error and warning messages."""

from __future__ import annotations

import difflib


def edit_distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: typos, including swapped letters, count as one edit."""
    d = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) + 1):
        d[i][0] = i
    for j in range(len(b) + 1):
        d[0][j] = j
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
    return d[len(a)][len(b)]


def closest(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    """The known name ``word`` is most likely a typo of, or None when nothing is close."""
    if not choices:
        return None
    best = min(choices, key=lambda c: (edit_distance(word.lower(), c.lower()), c))
    if edit_distance(word.lower(), best.lower()) <= max(1, len(word) // 3):
        return best
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.75)
    return match[0] if match else None


def did_you_mean(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    best = closest(word, choices)
    return f"did you mean '{best}'?" if best else None
