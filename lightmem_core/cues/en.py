"""English cues: the words and patterns the offline rules match.

Grouped by the question each group answers; a rule imports the group it needs by name.
"""

from __future__ import annotations

import re

# --- who is asking about whom --------------------------------------------------------------
# "the user" / "the assistant": in a user's own memory the role names nobody in particular
ROLE_WORDS = re.compile(r"\bthe\s+(user|assistant)(?:'s)?\b", re.I)
# a capitalised word that may name a speaker ("What did Caroline paint?")
CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?:[-'][A-Za-z]+)?\b")
# questions whose answer is a name: who / where, "which city", "what company", "the name of";
# "what kind of", "what does" ask for something else
NAME_QUESTION = re.compile(
    r"^\W*(who|whom|whose|where)\b|\bname\b|\b(which|what)\s+(?!(kind|kinds|type|types|sort|sorts|"
    r"does|do|did|is|are|was|were|has|have|had|can|could|will|would|should)\b)[a-z]+",
    re.I,
)
# "should I", "can I": the asker as the subject of the question itself
INVERTED_FIRST_PERSON = re.compile(r"\b(should|shall|can|could|do|did|would|will|am|may|might|must)\s+I\b", re.I)
# the asker speaking of themselves ("my trip", "did I"): in a user's chats with an assistant, the user
ASKER = re.compile(r"\bI\b|\b(?:[Mm]e|[Mm]y|[Mm]ine|[Mm]yself|I'm|I've|I'd|I'll)\b")
FIRST_PERSON = re.compile(r"\b(I|I'm|I've|I'd|I'll|my|we|we're|we've|our)\b", re.I)

# --- present and past states ---------------------------------------------------------------
# a sentence reporting that a state has ended ("I'm no longer in London" only explains)
ENDED = re.compile(
    r"\b(no longer|not any ?more|moved out|broke up|split up|stopped|quit|gave up|"
    r"used to|ended|former(ly)?)\b",
    re.I,
)
# a sentence stating the present state; "for now" is a stopgap, not a state
SAID_NOW = re.compile(r"\b(?<!for )(now|these days|nowadays|currently|at the moment)\b", re.I)

# --- is a question about the present? ------------------------------------------------------
# Kept apart from SAID_NOW: that one reads statements, these read questions, where "still",
# "latest" or "today" ask for the current value too.
# a question that says it is about now ("where do I live now?")
RECENCY = re.compile(
    r"\b(now|currently|current|these days|nowadays|at the moment|anymore|still|latest|most recent(?:ly)?|"
    r"recently|lately|today|at present|presently|at this point|as of now)\b",
    re.I,
)
# a question that counts or totals ("how many plants did I buy?"): it wants every mention
COUNTING = re.compile(r"\b(how many|how often|how much (time|money)|in total|altogether|total number)\b", re.I)
# asked in the present tense ("where does she live?"), unless "ever"/"been" makes it a history question
PRESENT_TENSE = re.compile(r"^\s*(?:\w+\s+){0,4}?(?:do|does|is|are|am)\b(?!\s+\w+\s+(?:ever|been)\b)", re.I)
# a question about the past even in the present tense ("did", "used to", "first", "ever")
PAST_TENSE = re.compile(r"\b(did|was|were|had|used to|ago|last|before|previous(?:ly)?|first|ever)\b", re.I)

# --- which single-valued attribute does a statement set, and does it say it changed? ------
# Attributes that hold one current value per person: a newer statement about one of these
# replaces the older; everything else (events, hobbies, sports, opinions) accumulates.
ATTRIBUTES: dict[str, re.Pattern[str]] = {
    "residence": re.compile(
        r"\b(live[sd]?|living|moved|moving|relocat\w*|home(town)?|apartment|flat|house|"
        r"neighbou?rhood|settled|lease|address|based in|out in|born and raised)\b",
        re.I,
    ),
    "job": re.compile(
        r"\b(work(s|ed|ing)?|job|employ\w*|hired|joined|role|position|company|boss|career|office|"
        r"colleagues?|team|teach(es|ing)?|taught|quit|left \w+( \w+)? for|start(ed|ing)? (at|as)|"
        r"promot\w*|intern\w*|retire\w*|freelanc\w*|"
        r"(i'?m|i am|as) an? [\w-]+( [\w-]+)? (at|for|with)\b)",
        re.I,
    ),
    "diet": re.compile(
        r"\b(vegetarian|vegan|pescatarian|carnivore|diet|meat|gluten|keto|eat(ing|s)?|ate|food|"
        r"cuisine|spicy|mild|milk|dairy|cheese|pizza|sushi|restaurant|order(ing)?|snack|breakfast|"
        r"lunch|dinner|cook(ing)?)\b",
        re.I,
    ),
    "relationship": re.compile(
        r"\b(married|marry|wife|husband|spouse|dating|date|boyfriend|girlfriend|partner|"
        r"engaged|fianc[ée]e?|divorc\w*|broke up|split up|separated|single|roommate|flatmate|best friend|"
        r"seeing (someone|anyone|each other)|back together|\w+ (months|years) together|anniversary)\b",
        re.I,
    ),
    "drink": re.compile(r"\b(coffee|tea|drink(ing|s)?|beer|wine|latte|espresso|matcha|soda|juice|alcohol\w*)\b", re.I),
    "pastime": re.compile(r"\b(hobby|hobbies|games?|gaming|pastime|free time|spare time|weekends?)\b", re.I),
}
# "my favourite X": one attribute per X
FAVOURITE = re.compile(r"\bfavou?rite\s+(\w+)", re.I)
# a change word lets a less similar statement replace the old one. Wider than ENDED (which
# must mean "no longer"): "now", "new", "since" also announce a new value.
CHANGE = re.compile(
    r"\b(now|these days|nowadays|anymore|any more|no longer|switch(ed)?|chang(ed|e)|mov(ed|ing)|"
    r"instead|used to|recently|new|started|quit|left|gave up|given up|broke up|finally|update|"
    r"got married|divorced|engaged|retired|since)\b",
    re.I,
)

# --- is a word filler? ---------------------------------------------------------------------
# function words and chat fillers: no content of their own (keywords, entity edges, the
# entropy compressor's discount, the sentence splitter's "a sentence starts here")
STOPWORDS = frozenset(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can can't cannot could couldn't did didn't do does doesn't doing don't down during each few
    for from further had hadn't has hasn't have haven't having he he'd he'll he's her here here's hers herself him
    himself his how how's i i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same shan't she she'd
    she'll she's should shouldn't so some such than that that's the their theirs them themselves then there there's
    these they they'd they'll they're they've this those through to too under until up very was wasn't we we'd
    we'll we're we've were weren't what what's when when's where where's which while who who's whom why why's with
    won't would wouldn't you you'd you'll you're you've your yours yourself yourselves also just really yeah yes
    oh wow hey hi hello thanks thank okay ok sure well so gonna wanna got get gets getting like lot lots much
    many one thing things something anything way still even ever always never maybe definitely totally
    haha hahaha lol glad great good nice cool awesome amazing""".split()
)
# capitalised in every sentence, and never a name: "I" and its contractions
NOT_NAMES = frozenset("i i'm i’m i've i’ve i'll i’ll i'd i’d".split())

# --- which month, which weekday? -----------------------------------------------------------
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)  # in calendar order: index + 1 is the month's number
MONTH_ABBREVIATIONS = frozenset("jan feb mar apr jun jul aug sep sept oct nov dec".split())
# MONTHS and MONTH_ABBREVIATIONS as one regex group for the time expressions. Written out
# rather than derived: "sept?(?:ember)?" also reads "sepember", and a pattern built from
# the tables would stop matching that.
MONTH_PATTERN = (
    r"(?P<month>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sept?(?:ember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")  # datetime.weekday() order
WEEKDAY_ABBREVIATIONS = frozenset("mon tue tues wed thu thur thurs fri sat sun".split())

# --- how many? -----------------------------------------------------------------------------
NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
    "hundred": 100,
    "thousand": 1_000,
    "million": 1_000_000,
    "billion": 1_000_000_000,
    "dozen": 12,
}
# as often a pronoun ("the one I liked") as a number: not a fact on its own
PRONOUN_NUMBERS = frozenset({"one"})
# counts of a time unit in a question ("a couple of weeks ago"), with the number each stands for
VAGUE_COUNTS = {"a": 1, "an": 1, "few": 3, "a few": 3, "couple of": 2, "a couple of": 2}
# words that count the time unit after them ("a week", "several days"), read one word at a
# time; unlike VAGUE_COUNTS, "couple" stands alone and "several" has no number
QUANTIFIERS = frozenset({"a", "an", "few", "couple", "several"})
# "a week": the article counts the unit but is no fact of its own
ARTICLES = frozenset({"a", "an"})
# the counts the time expressions accept, as regex alternatives: "ago" counts up to twelve
# and vaguely, "the past N days" from two to ten (other words there are not a count)
AGO_COUNT = r"\d+|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|(?:a\s+)?few|(?:a\s+)?couple\s+of"
PAST_N_COUNT = r"\d+|two|three|four|five|six|seven|eight|nine|ten|few|couple\s+of"

# --- how long, which part of which period? -------------------------------------------------
DAYS_PER_UNIT = {"day": 1, "week": 7, "month": 30.44, "year": 365.25}
# the first and the last month of each season
SEASONS = {"spring": (3, 5), "summer": (6, 8), "fall": (9, 11), "autumn": (9, 11), "winter": (12, 2)}
PARTS_OF_DAY = frozenset({"morning", "afternoon", "evening", "night"})
# the words a time phrase ends in ("two days", "last summer"), plural too
TIME_UNITS = (
    frozenset(
        "minute minutes hour hours day days week weeks weekend weekends month months year years decade decades "
        "semester".split()
    )
    | PARTS_OF_DAY
    | frozenset(SEASONS)
)
# words that make the unit after them a time ("last week", "every summer")
TIME_MODIFIERS = frozenset("last next this past coming every previous few couple several".split())
# single words that are a time by themselves
DAY_WORDS = frozenset("yesterday today tomorrow tonight noon midnight o'clock o’clock".split())
AM_PM = frozenset("am pm a.m p.m a.m. p.m.".split())
# makes the phrase before it a time in the past ("two days ago")
AGO = frozenset({"ago"})
# "early/mid/late May": the third of the period
PART_OF_PERIOD = {"early": 0, "mid": 1, "late": 2}
# "last week" is the one before this one; "next week" has no memories yet
BACKWARD = frozenset({"last", "past", "previous"})
FORWARD = frozenset({"next"})
# days back from today of a named day ("today", "this morning": 0)
DAYS_BACK = {"the day before yesterday": 2, "yesterday": 1}

# --- which period does a question name? ----------------------------------------------------
# (kind, pattern) in the order they are tried; the first that resolves wins. The groups are
# what timeparse resolves: y/m/d numbers, ``month`` (MONTHS), ``part`` (PART_OF_PERIOD),
# ``n`` (NUMBER_WORDS, VAGUE_COUNTS), ``unit`` (DAYS_PER_UNIT, "weekend", SEASONS), ``which``
# (BACKWARD, FORWARD, "this", "on"; DAYS_BACK for a named day), ``wd`` (WEEKDAYS).
TIME_EXPRESSIONS: list[tuple[str, re.Pattern[str]]] = [
    ("iso_date", re.compile(r"\b(?:on\s+)?(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})\b", re.I)),
    (
        "day_month_year",
        re.compile(
            rf"\b(?:on\s+)?(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{MONTH_PATTERN}\.?,?\s+(?P<y>\d{{4}})\b",
            re.I,
        ),
    ),
    (
        "month_day_year",
        re.compile(rf"\b(?:on\s+)?{MONTH_PATTERN}\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?,?\s+(?P<y>\d{{4}})\b", re.I),
    ),
    (
        "month_year",
        re.compile(
            rf"\b(?:(?:in|during|around|by)\s+)?(?:(?P<part>early|mid|late)[\s-]+)?{MONTH_PATTERN}\.?,?\s+(?:of\s+)?(?P<y>\d{{4}})\b",
            re.I,
        ),
    ),
    (
        "day_month",
        re.compile(rf"\b(?:on\s+)?(?:the\s+)?(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s+of)?\s+{MONTH_PATTERN}\b", re.I),
    ),
    (
        "month_day",
        re.compile(rf"\b(?:on\s+)?{MONTH_PATTERN}\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?!\s*(?::|am|pm))", re.I),
    ),
    (
        "month",
        re.compile(rf"\b(?:in|during|since|by)\s+(?:(?P<part>early|mid|late)[\s-]+)?{MONTH_PATTERN}\b(?!\s+\d)", re.I),
    ),
    (
        "year",
        re.compile(r"\b(?:in|during|since|by)\s+(?:(?P<part>early|mid|late)[\s-]+)?(?P<y>(?:19|20)\d{2})\b", re.I),
    ),
    ("ago", re.compile(rf"\b(?P<n>{AGO_COUNT})\s+(?P<unit>day|week|month|year)s?\s+ago\b", re.I)),
    (
        "relative",
        re.compile(
            r"\b(?P<which>last|this|past|previous|next)\s+(?P<unit>week(?:end)?|month|year|summer|winter|spring|fall|autumn)\b",
            re.I,
        ),
    ),
    (
        "past_n",
        re.compile(
            rf"\b(?:in\s+|over\s+|during\s+)?the\s+(?:last|past)\s+(?P<n>{PAST_N_COUNT})\s+(?P<unit>day|week|month|year)s\b",
            re.I,
        ),
    ),
    (
        "weekday",
        re.compile(
            r"\b(?:(?P<which>last|this|on)\s+)(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)\b", re.I
        ),
    ),
    (
        "named_day",
        re.compile(
            r"\b(?P<which>yesterday|today|tonight|this morning|this afternoon|this evening|the day before yesterday)\b",
            re.I,
        ),
    ),
]
# the words just before an expression (lower-cased) that open its range on one side:
# "before May" ends before it, "by May" / "until May" ends with it, "after"/"since" start there
ENDS_BEFORE = re.compile(r"\b(before|prior to)\s*$")
ENDS_WITH = re.compile(r"\b(until|till|by)\s*$")
STARTS_AFTER = re.compile(r"\b(after|following)\s*$")
STARTS_WITH = re.compile(r"\bsince\s*$")
# the same words when the expression's own pattern took them in ("by June", "since 2021")
OWN_ENDS_WITH = "by "
OWN_STARTS_WITH = "since "
# "before the trip to Paris": an event the period is relative to (parsed; the read path does not
# date it from memory any more: benchmarks/README.md, "Read-path stages")
EVENT_ANCHOR = re.compile(
    r"\b(?P<rel>before|after|since|prior to|following|during|while)\s+"
    r"(?P<event>(?:the|my|our|his|her|their|your|a|an)\s+[^?.!,;]{2,60}?)"
    r"(?=\s*(?:[?.!,;]|$|\b(?:and|but|when|did|was|were)\b))",
    re.I,
)
# the relation each anchor word means (any other: "after")
ANCHOR_RELATION = {"before": "before", "prior to": "before", "during": "during", "while": "during"}

# --- how do conversation logs write a time stamp? ------------------------------------------
# LoCoMo writes "1:56 pm on 8 May, 2023"
LOCOMO_STAMP = re.compile(r"^\s*(\d{1,2}:\d{2}\s*[ap]\.?m\.?)\s+on\s+(.+)$", re.I)
