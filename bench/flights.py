"""A synthetic flight-booking intent set: 16 ATIS-style intents whose texts share their cities, dates, airlines.

The development sets separate their intents by topic, so a frozen encoder already tells them apart. Flight
booking is the opposite case (Hemphill et al. 1990, ATIS): every request names cities, days and airlines, and
what decides the intent is a word or two ("flights" / "fares" / "what time" / "how many"). Frozen sentence
vectors are dominated by the shared entities, which is where instant classification falls far behind
contrastive fine-tuning. Real ATIS is not in this repository's data; this generator builds a set with that
structure from templates, with the test dominated by the plain "flight" intent as in ATIS.

    from flights import flight_set
    train, test = flight_set(seed=0)   # pandas frames with text,label

Templates are split per intent into a train half and a test half (alternately), so a test text never shares
its template with a support example: the classifier has to generalise from the intent words, not match a
sentence frame. Slot values are drawn from the same lists in both halves.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

CITIES = ("boston", "denver", "dallas", "atlanta", "pittsburgh", "baltimore", "san francisco", "oakland",
          "philadelphia", "washington", "new york", "chicago", "miami", "seattle", "las vegas", "phoenix",
          "charlotte", "detroit", "houston", "orlando", "salt lake city", "st. louis", "milwaukee", "memphis",
          "cleveland", "indianapolis", "kansas city", "nashville", "tampa", "toronto", "montreal", "minneapolis",
          "san diego", "los angeles", "columbus", "cincinnati", "st. paul", "tacoma", "san jose", "burbank")
AIRLINES = ("delta", "united", "american airlines", "continental", "us air", "northwest", "twa", "america west",
            "alaska airlines", "midwest express", "lufthansa", "canadian airlines")
AIRLINE_CODES = ("dl", "ua", "aa", "co", "us", "nw", "hp", "as", "yx", "ea")
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
            "twelfth", "fifteenth", "twentieth", "twenty first", "twenty third", "thirtieth")
TIMES = ("6 am", "7 am", "8 am", "9 am", "10 am", "noon", "1 pm", "2 pm", "3 pm", "4 pm", "5 pm", "6 pm", "7 pm",
         "8 pm", "9 pm", "1000", "1130", "1400", "1715", "2100")
PARTS_OF_DAY = ("morning", "afternoon", "evening", "night", "early morning", "late afternoon")
AIRCRAFT = ("boeing 737", "boeing 757", "boeing 767", "md80", "dc10", "dc9", "airbus a320", "l1011",
            "canadair regional jet", "f28", "j31", "boeing 747")
FARE_CODES = ("y", "qx", "qw", "f", "h", "b", "m", "k", "fn", "bh", "qo", "yn")
RESTRICTION_CODES = ("ap/57", "ap/80", "ap/2", "s/", "sa", "ap/68", "s/wa")
AIRPORT_CODES = ("bwi", "dfw", "sfo", "lga", "jfk", "ord", "mco", "ewr", "iah", "atl", "den", "bos", "mke", "yyz")
MEALS = ("breakfast", "lunch", "dinner", "a snack", "a meal")
CLASSES = ("first class", "coach", "economy", "business class")

# Constraint phrases a request may carry; "flight" requests carry them most, the others sometimes.
MODS = (" on {day}", " {day} {part}", " on {month} {ord}", " leaving after {time}", " arriving before {time}",
        " on {airline}", " with a stop in {c}", " nonstop", " in the {part}", " {day} {part} on {airline}",
        " that arrive by {time} on {day}", " on {month} {ord} in the {part}", " round trip", " one way")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "flight": (
        "show me flights from {a} to {b}{m}", "i need a flight from {a} to {b}{m}",
        "what flights go from {a} to {b}{m}", "list {airline} flights from {a} to {b}{m}",
        "i would like to fly from {a} to {b}{m}", "find me the cheapest flight from {a} to {b}{m}",
        "are there any nonstop flights from {a} to {b}{m}",
        "give me the flights leaving {a} {day} {part} arriving in {b}",
        "i want a round trip ticket from {a} to {b}{m}", "flights from {a} to {b} arriving before {time}",
        "what is the earliest flight from {a} to {b}{m}", "which flights leave {a} after {time} and stop in {c}",
        "show me {cls} flights from {a} to {b} on {airline}", "i need to get from {a} to {b} on {month} {ord}",
        "please list all flights between {a} and {b}{m}", "what is the last flight from {a} to {b}{m}",
        "do you have a flight from {a} to {b} that serves {meal}", "i'd like to book a flight to {b} from {a}{m}",
        "can you find a {airline} flight from {a} to {b}{m}",
        "what are the flights from {a} to {b} with the lowest fare",
        "show me the {part} flights out of {a} going to {b}", "i am looking for a flight from {a} to {b}{m}",
        "get me a one way flight from {a} to {b}{m}", "what flights are there tomorrow from {a} to {b}",
    ),
    "airfare": (
        "how much is a flight from {a} to {b}{m}", "what is the fare from {a} to {b}{m}",
        "show me the fares from {a} to {b}{m}", "what are the round trip fares from {a} to {b} on {airline}",
        "what's the cheapest fare from {a} to {b}{m}", "how much does it cost to fly from {a} to {b}{m}",
        "give me the price of a {cls} ticket from {a} to {b}", "what is the {cls} fare on {airline} flight {num}",
        "list the one way fares from {a} to {b} on {month} {ord}", "what does a ticket from {a} to {b} cost{m}",
        "price of flights from {a} to {b}{m}", "how expensive is a {cls} seat from {a} to {b}",
    ),
    "ground_service": (
        "what ground transportation is available in {a}", "is there a limousine service at the {a} airport",
        "how do i get from the {a} airport to downtown", "show me car rentals in {a}",
        "what kind of ground transportation is there from {a} airport to the city",
        "is there a bus from the airport to downtown {a}", "i need a taxi from {a} airport to my hotel",
        "what ground transportation is there from {code} to downtown {a}", "list rental cars at the {a} airport",
        "can i take a train from the {a} airport into the city",
    ),
    "airline": (
        "which airlines fly from {a} to {b}{m}", "what airlines have flights from {a} to {b}{m}",
        "what airline is {acode}", "which airline has the most flights to {b}",
        "what airline flies {acode} flight {num}", "list the airlines that serve {a}",
        "show me all airlines with nonstop service between {a} and {b}", "which carrier goes from {a} to {b}{m}",
        "what airlines stop in {c} on the way from {a} to {b}", "tell me which airlines fly into {code}",
    ),
    "abbreviation": (
        "what does fare code {fc} mean", "what is fare code {fc}", "explain the abbreviation {acode}",
        "what does {code} stand for",
        "what is the meaning of the code {fc}", "what does the letter {fc} mean in the fare column",
        "what is {acode} short for", "define the fare class {fc}",
    ),
    "aircraft": (
        "what type of aircraft is used on the flight from {a} to {b}{m}",
        "what kind of plane is {airline} flight {num}",
        "show me the aircraft flying from {a} to {b}{m}", "what is a {aircraft}",
        "which planes does {airline} use between {a} and {b}", "what equipment does {airline} fly from {a} to {b}",
        "is the flight from {a} to {b}{m} on a jet", "what model of airplane flies from {a} to {b}{m}",
    ),
    "flight_time": (
        "what time does {airline} flight {num} leave {a}", "what are the departure times from {a} to {b}{m}",
        "when does the last flight from {a} to {b} arrive", "what time do flights from {a} arrive in {b} on {day}",
        "give me the schedule of flights from {a} to {b} on {month} {ord}",
        "at what time does the {part} flight from {a} get to {b}",
        "when does flight {num} from {a} land in {b}", "what are the arrival times of {airline} flights into {b}{m}",
    ),
    "quantity": (
        "how many flights does {airline} have from {a} to {b}", "how many flights go from {a} to {b}{m}",
        "how many {cls} seats are there on flight {num}", "how many cities does {airline} serve",
        "how many airlines fly into {b}", "how many stops does the flight from {a} to {b}{m} make",
        "what is the number of flights from {a} to {b}{m}", "how many fares are there from {a} to {b}",
    ),
    "distance": (
        "how far is it from the {a} airport to downtown {a}", "what is the distance from {a} to {b}",
        "how many miles is it from {a} to {b}", "how long is the drive from the {a} airport to the city",
        "how far is {code} from downtown", "what's the distance between {code} and {a}",
    ),
    "city": (
        "what city is the airport {code} in", "which cities does {airline} fly to",
        "where is {code} located", "list the cities served by {airline}",
        "what cities can i fly to from {a} nonstop", "what city does {airline} flight {num} go to",
        "which cities have flights to {b}{m}", "in what city is {airline} based",
    ),
    "airport": (
        "what airports are in {a}", "which airport is closest to downtown {a}", "list all the airports near {a}",
        "what is the name of the airport in {a}", "where do {airline} flights to {b} land",
        "which airport does the flight from {a} to {b}{m} use", "what is the code for the {a} airport",
        "show me airports within 50 miles of {a}",
    ),
    "ground_fare": (
        "how much does a taxi cost from the {a} airport to downtown", "what is the price of a limousine in {a}",
        "how much is car rental in {a}", "what does ground transportation cost in {a}",
        "how much is the bus from {code} into {a}", "what are the rates for rental cars at {code}",
    ),
    "capacity": (
        "how many passengers can a {aircraft} hold", "what is the seating capacity of the {aircraft}",
        "how many people fit on {airline} flight {num}", "what's the capacity of the plane from {a} to {b}{m}",
        "how many seats does a {aircraft} have", "what is the seating capacity of the aircraft on flight {num}",
    ),
    "flight_no": (
        "what is the flight number of the {part} flight from {a} to {b}",
        "give me the flight numbers from {a} to {b} on {airline}",
        "which flight number leaves {a} at {time}", "i need the flight number for the {airline} flight to {b}{m}",
        "what are the flight numbers of the nonstop flights from {a} to {b}",
        "tell me the number of the flight that arrives in {b} at {time}",
    ),
    "meal": (
        "what meals are served on {airline} flight {num}", "is {meal} served on the flight from {a} to {b}{m}",
        "what kind of food is served on the {part} flight from {a} to {b}", "does the {time} flight to {b} have {meal}",
        "what is the meal on {airline} from {a} to {b}", "are meals included on flights from {a} to {b}{m}",
    ),
    "restriction": (
        "what are the restrictions on the cheapest fare from {a} to {b}", "what restrictions apply to fare code {fc}",
        "are there any restrictions on the {airline} round trip fare", "what does restriction {rc} mean",
        "what are the rules for the {cls} fare from {a} to {b}{m}", "tell me the restrictions on fare {fc}",
    ),
}
# Share of each intent in the test set, after ATIS's test split: "flight" about 70 %.
TEST_COUNTS = {"flight": 630, "airfare": 48, "ground_service": 36, "airline": 38, "abbreviation": 33,
               "aircraft": 9, "flight_time": 10, "quantity": 8, "distance": 10, "city": 6, "airport": 18,
               "ground_fare": 7, "capacity": 21, "flight_no": 8, "meal": 6, "restriction": 6}


def _fill(template: str, rng: np.random.Generator) -> str:
    """One text from ``template``: each slot gets a random value; {m} a constraint phrase (or none)."""
    a, b, c = rng.choice(len(CITIES), 3, replace=False)
    values = {"a": CITIES[a], "b": CITIES[b], "c": CITIES[c], "airline": rng.choice(AIRLINES),
              "acode": rng.choice(AIRLINE_CODES), "day": rng.choice(DAYS), "month": rng.choice(MONTHS),
              "ord": rng.choice(ORDINALS), "time": rng.choice(TIMES), "part": rng.choice(PARTS_OF_DAY),
              "aircraft": rng.choice(AIRCRAFT), "fc": rng.choice(FARE_CODES), "rc": rng.choice(RESTRICTION_CODES),
              "code": rng.choice(AIRPORT_CODES), "meal": rng.choice(MEALS), "cls": rng.choice(CLASSES),
              "num": str(rng.integers(10, 2000))}
    values["m"] = "" if rng.random() < 0.3 else rng.choice(MODS).format(**values)
    return re.sub(r"\s+", " ", template.format(**values)).strip()


def flight_set(seed: int = 0, train_per_intent: int = 40,
               test_counts: dict[str, int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(train, test)`` frames with ``text,label``: ``train_per_intent`` texts per intent from the even-numbered
    templates, ``test_counts`` texts per intent (default: ATIS-like, 70 % "flight") from the odd-numbered ones;
    no text appears in both."""
    rng = np.random.default_rng(seed)
    counts = TEST_COUNTS if test_counts is None else test_counts

    def draw(intent: str, half: int, n: int, avoid: set[str]) -> list[str]:
        templates = TEMPLATES[intent][half::2]
        out: list[str] = []
        for _ in range(50 * n):
            if len(out) == n:
                break
            text = _fill(templates[rng.integers(len(templates))], rng)
            if text not in avoid and text not in out:
                out.append(text)
        return out

    train_rows = [(t, k) for k in TEMPLATES for t in draw(k, 0, train_per_intent, set())]
    seen = {t for t, _ in train_rows}
    test_rows = [(t, k) for k, n in counts.items() for t in draw(k, 1, n, seen)]
    return (pd.DataFrame(train_rows, columns=["text", "label"]), pd.DataFrame(test_rows, columns=["text", "label"]))
