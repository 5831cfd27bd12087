"""The valid range of a numeric option, declared where the option is: `type=bounded(int, min=1)`.

argparse calls the type with the command-line text, so a value outside the range is refused at parse time, in
one line naming the option, the value and the range (argparse puts "argument --crop_size: " in front):

    argument --crop_size: must be an integer >= 1, got 0

Defaults that never pass through the type (presets, dataset hooks, saved options) are checked against the same
ranges once the options are composed (`check_values`); a saved value is told by the file it came from. The
range stays on the callable (`Bounded`), so tests/test_options.py can check that every numeric option of every
parser declares one.
"""
import argparse
import math


class Bounded:
    """A numeric option's type: `kind` (int or float) within [min, max] (either end open or absent), plus
    `special` values outside the range that mean something ({-1: "uses --ngf"})."""

    def __init__(self, kind, min=None, max=None, min_inclusive=True, max_inclusive=True, special=None,
                 allow_inf=False, odd=False):
        if kind not in (int, float):
            raise TypeError(f"bounded: kind must be int or float, not {kind!r}")
        self.kind, self.min, self.max = kind, min, max
        self.min_inclusive, self.max_inclusive = min_inclusive, max_inclusive
        self.special = dict(special or {})
        self.allow_inf, self.odd = allow_inf, odd
        self.__name__ = kind.__name__  # argparse names the type by it in its own messages

    def contains(self, value) -> bool:
        if value in self.special:
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.kind is int and not float(value).is_integer():
            return False
        if math.isnan(value) or (math.isinf(value) and not self.allow_inf):
            return False
        if self.min is not None and (value < self.min or (value == self.min and not self.min_inclusive)):
            return False
        if self.max is not None and (value > self.max or (value == self.max and not self.max_inclusive)):
            return False
        return not (self.odd and value % 2 == 0)

    def describe(self) -> str:
        """'an integer >= 1', 'a number in [0, 1)', 'an odd integer >= 1', '... or -1 (uses --ngf)'."""
        what = ("an odd integer" if self.odd else "an integer") if self.kind is int else "a number"
        if self.min is not None and self.max is not None:
            text = (f"{what} in {'[' if self.min_inclusive else '('}{self.min:g}, "
                    f"{self.max:g}{']' if self.max_inclusive else ')'}")
        elif self.min is not None:
            text = f"{what} {'>=' if self.min_inclusive else '>'} {self.min:g}"
        elif self.max is not None:
            text = f"{what} {'<=' if self.max_inclusive else '<'} {self.max:g}"
        else:
            text = what
        for value, meaning in self.special.items():
            text += f", or {value:g} ({meaning})"
        return text

    def __call__(self, text):
        try:
            value = self.kind(text)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}") from None
        if not self.contains(value):
            raise argparse.ArgumentTypeError(f"must be {self.describe()}, got {text}")
        return value

    def __repr__(self):
        return f"bounded({self.describe()})"


def bounded(kind, **range_):
    """The argparse type of a numeric option with its valid range; see `Bounded` for the keywords."""
    return Bounded(kind, **range_)


def check_values(parser, opt, saved_in=None):
    """Values that did not come through a type (hooks' and presets' defaults, saved options) must be in their
    option's range too: the first that is not ends the parse with one line. `saved_in`: {dest: file} of the
    values read from an experiment's saved options, which the line names instead of the option (the user never
    typed it)."""
    saved_in = saved_in or {}
    for action in parser._actions:
        value = getattr(opt, action.dest, None)
        if isinstance(action.type, Bounded) and value is not None and not isinstance(value, str) \
                and not action.type.contains(value):
            flag = action.option_strings[0]
            if action.dest in saved_in:
                parser.error(f"{saved_in[action.dest]}: {flag} {value} (saved there) must be "
                             f"{action.type.describe()}: fix or delete the file, or give {flag} on the command line")
            parser.error(f"argument {flag}: must be {action.type.describe()}, got {value} (not from the command "
                         f"line: a preset or a dataset's default)")
