"""Headline words and `same_event`: pairs of real headlines of one event and of two."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from feedsvc.headlines import (
    AMOUNT_MARK,
    ASKING,
    NAME_HOURS,
    REPORT,
    ROUND_UP,
    _stem,
    headline_kind,
    headline_words,
    same_event,
    written_names,
)
from feedsvc.records import Record
from tests.story_records import make_record, titled

# Headline pairs from real records of the collection (everyday-cc/ai, November-December 2022)
# that hold a common URL within the window (bench/README.md, Real sample).
ONE_EVENT = [
    (  # the records of tests/data/records: "facial recognition" counts half
        "Italy bans the use of facial-recognition technology",
        "Italy Outlaws Facial Recognition Tech, Except to Fight Crime",
    ),
    (
        "Meta pauses AI bot Galactica demo after complaints of fake research",
        "Meta takes down AI bot after complaints of fake research",
    ),
    (
        "Meta fires Galactica AI over controversial life choices",
        "Meta Shuts Down Public Test Of Galactica, Its \u2018AI For Science\u2019",
    ),
    (
        "Amazon unveils its latest warehouse robot",
        "Amazon's latest robot picker for warehouses uses AI to identify objects",
    ),
    (
        "Tesla's Full Self-Driving Beta Available to Anyone That Pays in North America",
        "Tesla Full Self-Driving beta now available: Musk",
    ),
    (
        "Microsoft and Nvidia team up to build massive AI cloud supercomputer",
        "Nvidia and Microsoft partner to build AI supercomputer",
    ),
    (
        "Qualcomm\u2019s Snapdragon 8 Gen 2 Announced \u2013 Huge Power And Performance"
        " With Lots Of AI",
        "Qualcomm debuts latest flagship Snapdragon chip and a new AI platform",
    ),
]
TWO_EVENTS = [
    (  # Galactica and Cicero: each in the other's related list
        "Facebook Takes Down AI That Churns Out Fake Academic Papers After Widespread Criticism",
        "Facebook Says It Has Created A 'Human-Level' Board Game AI",
    ),
    (  # a fintech named QUALCO, in the related lists of Qualcomm's chip launch
        "Qualco adds conversational AI from Webio to debt collection platform",
        "Qualcomm debuts latest flagship Snapdragon chip and a new AI platform",
    ),
    (
        "Nvidia: Data Center Growth But Gaming Profits Plummet",
        "Nvidia RTX 4050 GPU leaks via Samsung gaming laptop benchmarks",
    ),
    (
        "Tesla Full Self-Driving Caught Ignoring Stop Signs on School Buses",
        "Tesla Full Self-Driving Beta is now available to all owners in North America",
    ),
    (  # topic words alone
        "Italy Outlaws Facial Recognition Tech, Except to Fight Crime",
        "Facial recognition technology has shrugged off protests",
    ),
    (
        "Lockheed Martin teams up with Microsoft on classified cloud services for Pentagon",
        "Microsoft and Nvidia team up to build massive AI cloud supercomputer",
    ),
    (  # two company names and nothing else in common
        "Nvidia and Microsoft partner to build AI supercomputer",
        "Top 5 stories of the week: DALL-E uses, Nvidia\u2019s digital twins, Microsoft\u2019s AI"
        " inference, Intel detects deepfakes",
    ),
    (
        "Stack Overflow temporarily bans ChatGPT from platform",
        "AI bot ChatGPT stuns academics with essay-writing skills and usability",
    ),
]


# Held-out pairs: real records of February 2023 that hold a common URL within the window, judged
# after the word lists were written (bench/README.md, Held-out sample).
ONE_EVENT_HELD_OUT = [
    (
        "Meta to launch AI language model LLaMA",
        "Meta enters Big Tech AI race with launch of language model LLaMA",
    ),
    (
        "MediaTek likely to incorporate Nvidia AI GPU in smartphone SoC?",
        "MediaTek may soon integrate Nvidia's AI GPUs in flagship mobile chips",
    ),
    (
        "Nvidia stock rises after slight beat driven by A.I. chips",
        "Nvidia Beats Earning Expectations And Looks Towards AI, Stock Jumps 14% In Response",
    ),
    (
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
        "Microsoft introduces next-generation hybrid cloud platform",
    ),
    (
        "Nvidia shares soar day after Intel cuts dividend",
        "Chip Maker Nvidia Shares Soar 14% As Imaginations For AI Future Run Wild",
    ),
    (
        "Tesla recalls 362,758 vehicles, says Full Self-Driving Beta software may cause crashes",
        "Regulators force Tesla to recall 363,000 \u2018Full Self-Driving\u2019 vehicles",
    ),
]
TWO_EVENTS_HELD_OUT = [
    (  # one cluster of the aggregator: its related lists are the same
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
        "Sydney, We Barely Knew You: Microsoft Kills Bing AI's Bizarre Alter Ego",
    ),
    (
        "How Microsoft is Helping Preserve Vulnerable Indic Languages with AI",
        "Microsoft explains Bing's bizarre AI chat behavior",
    ),
    (
        "AMD slowly catching up to Nvidia in GPU sales",
        "Nvidia stock rises after slight beat driven by A.I. chips",
    ),
    ("Meta to launch AI language model LLaMA", "Using AI to reclaim Native languages"),
    (
        "Microsoft Is Experimenting With AI That Plays Minecraft For You",
        "Microsoft Limits Bing AI Chats to 5 Replies to Keep Conversations Normal",
    ),
]
# The held-out errors of `same_event` on the headlines alone: a product that became a platform
# after the lists were written (Bing, ChatGPT) or a word of no event (CEO, next) beside a
# company's name. Kept as expected failures: only the words common around their days
# (`WordCounts`) can part them (tests/test_stories.py).
HELD_OUT_ERRORS = [
    (
        "Bing's chat AI bot wants to be your new phone assistant. Here's how it's doing it",
        "Did Bing Really Say That? Microsoft Warns of Doctored AI Chats Spreading Online",
    ),
    (
        "Microsoft brings Bing\u2019s AI chatbot to mobile devices and adds voice support",
        "Sydney, We Barely Knew You: Microsoft Kills Bing AI's Bizarre Alter Ego",
    ),
    (
        "Nvidia CEO Says AI Will Allow Anyone to Be a Programmer",
        "NVIDIA CEO Teases AI Breakthroughs Ahead of GTC 2023",
    ),
    (
        "Nvidia adds $79 billion in market value after CEO Jensen Huang says ChatGPT represents"
        " an inflection point for artificial intelligence",
        "NVIDIA GTC 2023: Jensen Keynote, AI Developments, How To Watch And What Else To Expect",
    ),
    (
        "Microsoft Just Starting To Hit Next Gear Of Growth, Backed By ChatGPT And AI,"
        " Analyst Says",
        "Microsoft introduces next-gen hybrid cloud platform 'Azure Operator Nexus'",
    ),
]
# Parted since a headline that asks joins one that does not only on three particulars (ASKING):
# explainers of one theme, and the error it makes, a question on an event and its report.
TWO_EVENTS_ASKING = [
    (
        "AI Chatbots Are Coming to Search Engines. Can You Trust Them?",
        "How AI chatbots in search engines will completely change the internet",
    ),
]
ASKING_ERRORS = [
    (
        "Are ChatGPT and AlphaCode going to replace programmers?",
        "Competitive programming with AlphaCode",
    ),
]

# Whole-day pairs: real records of 16-27 December 2019 that hold a common URL within the window,
# judged after the grouping was committed (bench/README.md, Whole-day sample).
ONE_EVENT_WHOLE_DAY = [
    (
        "Artificial intelligence tracks down leukemia",
        "Artificial Intelligence That Tracks Down Leukemia Discovered",
    ),
    (
        "Why some cities and states balk at face recognition tech",
        "Why some cities, states and lawmakers want to curb facial recognition technology",
    ),
    (
        "Facebook says group used AI-generated faces to push pro-Trump messages",
        "Facebook, Twitter disable sprawling inauthentic operation that used AI to make fake faces",
    ),
]
TWO_EVENTS_WHOLE_DAY = [
    (  # a face-recognition test of Congress and a vision accelerator card, each in the other's list
        "Amazon\u2019s Face Recognition Disproportionately Matched Congressional Members of Color"
        " With Mugshots",
        "AI Accelerator Card Offers Face, Object Recognition Applications",
    ),
    (
        "Why 2020 Is Going to Be Another Huge Year for AI Stocks",
        "5 Artificial Intelligence Stocks to Consider",
    ),
]
# Its error: two AWS launches of re:Invent (Rekognition Custom Labels, SageMaker Studio), linked by
# a company's name and "releases", a news verb that the generic words do not hold.
WHOLE_DAY_ERRORS = [
    (
        "Amazon Releases A New Tool To Improve Machine Learning Processes",
        "Amazon Releases SageMaker Studio IDE for Machine Learning",
    ),
]


@pytest.mark.parametrize(
    ("one", "other"),
    ONE_EVENT
    + ONE_EVENT_HELD_OUT
    + ONE_EVENT_WHOLE_DAY
    + [
        pytest.param(*pair, marks=pytest.mark.xfail(strict=True, reason="a question parted"))
        for pair in ASKING_ERRORS
    ],
)
def test_headlines_of_one_event_are_linked(one: str, other: str) -> None:
    assert same_event(titled(one), titled(other))
    assert same_event(titled(other), titled(one))


@pytest.mark.parametrize(
    ("one", "other"),
    TWO_EVENTS
    + TWO_EVENTS_HELD_OUT
    + TWO_EVENTS_WHOLE_DAY
    + TWO_EVENTS_ASKING
    + [
        pytest.param(*pair, marks=pytest.mark.xfail(strict=True, reason="held-out error"))
        for pair in HELD_OUT_ERRORS + WHOLE_DAY_ERRORS
    ],
)
def test_headlines_of_different_events_are_not_linked(one: str, other: str) -> None:
    assert not same_event(titled(one), titled(other))
    assert not same_event(titled(other), titled(one))


def test_common_words_keep_two_market_reports_apart() -> None:
    """Two market reports of December 2019 (one lists the other) share "market" and "forecast",
    both common in that fortnight's headlines: apart with the common words, linked without."""
    vision = titled(
        "Computer Vision Market Key Players And Production Information Analysis With Forecast 2026"
    )
    translation = titled(
        "The global machine translation market at a CAGR of over 19% during the forecast period"
    )
    assert same_event(vision, translation)
    assert not same_event(vision, translation, {"market", "forecast"})


def test_three_shared_words_not_names_are_one_event_however_common() -> None:
    """Tesla's recall, where "recall" and the topic words are common around it (an event said
    day after day): linked by five shared words that are not names. Two shared words, all
    common, or three with a company's name among them, are not enough."""
    recall = titled(
        "Tesla recalls 362,758 vehicles, says Full Self-Driving Beta software may cause crashes"
    )
    regulators = titled(
        "Regulators force Tesla to recall 363,000 \u2018Full Self-Driving\u2019 vehicles"
    )
    common = {"recall", "full", "self", "driv", "vehicle", "beta"}
    assert same_event(recall, regulators, common)
    assert not same_event(titled("Bing chat limits"), titled("Bing chat mobile"), {"bing", "chat"})
    assert not same_event(
        titled("Nvidia chip stock beat"), titled("Nvidia stock beat chip"), {"stock", "beat"}
    )
    assert same_event(
        titled("Bing chat limits stock"),
        titled("Bing chat stock mobile"),
        {"bing", "chat", "stock"},
    )


def test_a_topic_word_counts_half() -> None:
    """One distinctive word and one topic word are not enough; with a second topic word they
    are (the rule `same_event` states, whatever headlines the lists are tuned on)."""
    assert not same_event(titled("Italy bans robots"), titled("Robots leave Italy"))
    assert same_event(titled("Italy bans chip robots"), titled("Robots with chips leave Italy"))


# Each rule of the stem and the letters it keeps: "ss" stays, "ies" of a long word is "y",
# "ches", "shes" and "xes" lose "es", then "ings", "ing", "ers", "er", "ed" and "s" (each only
# when enough of the word is left: "coding", "paper", "used", "gas" stay).
STEMS = {
    "class": "class",
    "companies": "company",
    "armies": "army",
    "watches": "watch",
    "crashes": "crash",
    "boxes": "box",
    "buildings": "build",
    "things": "thing",
    "training": "train",
    "bring": "bring",
    "hacking": "hack",
    "coding": "coding",
    "hackers": "hack",
    "users": "user",
    "hacker": "hack",
    "paper": "paper",
    "hacked": "hack",
    "used": "used",
    "cars": "car",
    "gas": "gas",
}


def test_stems() -> None:
    assert {word: _stem(word) for word in STEMS} == STEMS


def test_headline_words_join_elisions_and_keep_words_of_two_letters_or_more() -> None:
    assert headline_words("Rock'n'roll robots") == {"rocknroll", "robot"}
    assert headline_words("Rock\u2019n\u2019roll robots") == {"rocknroll", "robot"}
    assert headline_words("Plan B for Q robots") == {"plan", "robot"}
    assert headline_words("EV maker") == {"ev", "maker"}


def test_headline_words_drop_case_possessives_and_generic_words_but_keep_topics() -> None:
    assert headline_words("Meta\u2019s Galactica AI can write scientific papers") == {
        "meta",
        "galactica",
        "write",
        "scientific",
        "paper",
    }
    assert headline_words("AI robots: a new machine-learning model") == {"robot"}
    # A possessive with a curly apostrophe is dropped before the accents are: "AI\u2019s" is "ai"
    # (a generic word), not "ais" (the letters left once the apostrophe alone is dropped).
    assert headline_words("AI\u2019s robots") == headline_words("AI's robots") == {"robot"}


@given(st.text(max_size=60), st.text(max_size=60))
def test_same_event_is_symmetric(one: str, other: str) -> None:
    assert same_event(titled(one), titled(other)) == same_event(titled(other), titled(one))


def excerpted(title: str, excerpt: str) -> Record:
    """A record of that headline and excerpt (`titled`)."""
    return dataclasses.replace(titled(title), excerpt=excerpt)


# Held-out pairs of the development sample of 2022-2023 (bench/README.md, Stories, Excerpts)
# whose headlines give the least evidence `same_event` takes (two shared words, one of them
# distinctive), with their excerpts: the errors' excerpts share no word more, one event's repeat
# its particulars (Wikipedia's citations, Arvind Krishna, AlphaFold, access to Bard).
EXCERPTS_OF_TWO_EVENTS = [
    (  # Nvidia's Computex keynote: the DGX GH200 and Israel-1, "nvidia" + "supercomputer"
        (
            "Nvidia\u2019s new Grace Hopper superchip to fuel its DGX GH200 AI supercomputer",
            "The DGX GH200 AI supercomputer is targeted toward developing and supporting large"
            " language models. Google Cloud, Meta, and Microsoft already have access to it.",
        ),
        (
            "Nvidia to build Israel's most potent AI supercomputer",
            "Nvidia is investing hundreds of millions in building Israel's strongest AI"
            " supercomputer, Israel-1, promising breakthroughs in AI applications.",
        ),
    ),
    (  # Hinton's departure and the leaked memo: "google" + "warn"
        (
            "Pioneer of AI leaves Google to warn of tech\u2019s dangers",
            "So-called \u201cGodfather of AI\u201d Geoffrey Hinton quit his role at Google so he"
            " could more freely speak about the dangers of the technology he helped create.",
        ),
        (
            "Google engineer warns it could lose out to open-source technology in AI race",
            "Commonly available software poses threat to tech company and OpenAI\u2019s ChatGPT,"
            " leaked document says",
        ),
    ),
    (  # a launch and a press release: "generated" + "content"
        (
            "Kinetix launches text-to-animation AI for new era in user-generated content",
            "Kinetix has announced Text2Emotes, a generative AI technology that heralds a new era"
            " of user-generated gaming content (UGC).",
        ),
        (
            "The Battle for Authenticity: The Importance of Detecting Human vs. AI-Generated"
            " Content by Intetics",
            "Intetics, a leading global technology company, published an article on the burning"
            " challenges of generative AI, existing AI-generated content detection tools, their"
            " current limitations and prospects,",
        ),
    ),
    (  # Adobe Firefly and a column on creativity: "human" + "creative"
        (
            "Adobe Introduces Firefly, A Human-Driven Creative Approach To Generative AI",
            "Vice President & Principal Analyst, Modern Work, Melody Brue, covers Adobe's"
            " generative AI announcement, Firefly, this week at its annual Adobe Summit"
            " conference.",
        ),
        (
            "The Intersection Of AI And Human Creativity: Can Machines Really Be Creative?",
            "Explore the captivating world of AI creativity as we delve into the potential of"
            " machines to generate original content, blurring the lines between human and"
            " artificial ingenuity.",
        ),
    ),
]
EXCERPTS_OF_ONE_EVENT = [
    (
        (
            "Meta develops AI system for reviewing Wikipedia citations",
            "Meta detailed the AI system today. The company also released the code for the system"
            " under an open-source license. Wikipedia editors ensure that a given piece of"
            " information in a Wikipedia article is accurate by checking the source from which"
            " the information was retrieved.",
        ),
        (
            "Meta thinks its new AI tool can make Wikipedia more accurate",
            "Meta launched a new artificial intelligence tool which it claims can be used to"
            " automatically verify Wikipedia citations.",
        ),
    ),
    (
        (
            "IBM CEO: \u2018AI to cut 7,800 jobs in next five years\u2019",
            "IBM CEO Arvind Krishna expects AI to eliminate up to 7,800 jobs at the company. 30"
            " percent of current non-customer-facing employees are set not to be",
        ),
        (
            "IBM Plans To Replace Nearly 8,000 Jobs With AI \u2014 These Jobs Are First to Go",
            "IBM CEO Arvind Krishna announced a hiring pause, but that\u2019s not all. He also"
            " stated the company plans to replace nearly 8,000 jobs with AI.",
        ),
    ),
    (
        (
            "DeepMind AI predicts the structure of nearly every known protein",
            "The expanded AlphaFold protein database has various applications and could help"
            " scientists solve more biological mysteries of the world.",
        ),
        (
            "DeepMind AI has unlocked the \u2018protein universe\u2019 \u2013 and it could help to"
            " cure Parkinson\u2019s",
            "Access to the 3D-mapping AlphaFold technology is having a major impact on research"
            " into antibodies and disease treatments",
        ),
    ),
    (
        (
            "Google is releasing its Bard AI chatbot to the public",
            "Google will begin granting access to its Bard generative AI chatbot to tens of"
            " thousands of users who join a waiting list.",
        ),
        (
            "Google opens sign-ups for its Bard AI chatbot",
            "Search and hyperscale computing giant Google said today that it has opened up access"
            " to Bard, a generative AI chatbot ... a large language model.",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), EXCERPTS_OF_TWO_EVENTS)
def test_excerpts_that_share_nothing_more_part_a_link_of_the_least_headline_evidence(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    """Linked by the headlines alone (so when either record has no excerpt), apart when both
    excerpts are there and the texts share no distinctive word the headlines do not."""
    assert same_event(titled(one[0]), titled(other[0]))
    assert same_event(excerpted(*one), titled(other[0]))
    assert same_event(titled(one[0]), excerpted(*other))
    assert not same_event(excerpted(*one), excerpted(*other))
    assert not same_event(excerpted(*other), excerpted(*one))


@pytest.mark.parametrize(("one", "other"), EXCERPTS_OF_ONE_EVENT)
def test_excerpts_that_repeat_the_particulars_keep_a_link_of_the_least_headline_evidence(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    assert same_event(excerpted(*one), excerpted(*other))
    assert same_event(excerpted(*other), excerpted(*one))


def test_excerpts_add_a_distinctive_word_neither_a_name_a_topic_word_nor_common() -> None:
    """The headlines share "zorblax" and "nvidia" (the least evidence); the texts, with the
    excerpts, must share one distinctive word more: a word of both headlines, a name, a topic
    word or a common word is none."""
    one, other = "Nvidia zorblax launch", "Nvidia unveils zorblax"
    assert same_event(excerpted(one, "quarnel"), excerpted(other, "the quarnel"))
    assert not same_event(excerpted(one, "quarnel"), excerpted(other, "tibbet"))
    for weak in ("zorblax", "nvidia", "intel", "chatbot"):
        assert not same_event(excerpted(one, f"{weak} tibbet"), excerpted(other, f"vexel {weak}"))
    assert not same_event(excerpted(one, "quarnel"), excerpted(other, "quarnel"), {"quarnel"})
    assert same_event(
        excerpted(one, "quarnel tibbet"), excerpted(other, "tibbet quarnel"), {"tibbet"}
    )


def test_an_excerpt_that_says_nothing_its_headline_does_not_is_none() -> None:
    """An excerpt that repeats its headline (or says only generic words besides) has nothing to
    add: the pair is judged by the headlines, as without an excerpt."""
    (dgx, dgx_excerpt), (israel, _) = EXCERPTS_OF_TWO_EVENTS[0]
    assert same_event(excerpted(dgx, dgx_excerpt), excerpted(israel, israel))
    assert same_event(excerpted(dgx, f"{dgx}: the new AI model"), excerpted(israel, "Israel-1"))
    assert not same_event(
        excerpted(dgx, dgx_excerpt), excerpted(israel, f"{israel}: Israel-1, eight exaflops")
    )


def test_excerpts_are_not_asked_of_three_particulars_nor_of_one_article() -> None:
    """Three shared words that are neither names nor topic words are one event whatever the
    excerpts say, and so are two records of one article."""
    (bloomberg, _), (wsj, _), _ = TESLA_RECALL
    assert same_event(excerpted(bloomberg, "quarnel"), excerpted(wsj, "tibbet"))
    one = make_record("https://a.example/ccpa", title="Zorblax and Nvidia's quarnel")
    two = make_record("https://a.example/ccpa?utm_source=x", title="Nvidia zorblax tibbet")
    assert not same_event(
        dataclasses.replace(titled(one.title), excerpt="vexel"),
        dataclasses.replace(titled(two.title), excerpt="gorp"),
    )
    assert same_event(
        dataclasses.replace(one, excerpt="vexel"), dataclasses.replace(two, excerpt="gorp")
    )


# Real records (everyday-cc/ai, 16-17 February 2023) of Tesla's recall of its Full Self-Driving
# beta: the first two share "recall", "362", "crash" and "risk"; the first and the third only
# "recall" and "362" besides their names and topic words, and their texts "beta".
TESLA_RECALL = [
    (
        "Tesla Recalls 362,758 Cars Due to Full Self-Driving Crash Risk",
        "Tesla Inc. is recalling more than 362,758 vehicles due to a crash risk associated with"
        " its so-called Full Self-Driving Beta software, according to US authorities. The system"
        " \u201cmay allow the vehicle to act unsafe around intersections,\u201d including ...",
    ),
    (
        "Tesla Recalls Roughly 362,800 Vehicles Equipped With \u2018Full Self-Driving\u2019 Beta"
        " Over Crash Risk",
        "Tesla Inc. is recalling 362,800 vehicles equipped with its high-profile advanced-driver"
        " assistance feature, a technology marketed as Full Self-Driving Beta, in response to"
        " regulatory pressure, the U.S. top car-safety agency said. In a notice published ...",
    ),
    (
        "Tesla Recalls Roughly 362,800 Vehicles to Fix \u2018Full-Self Driving\u2019 Beta Software",
        "Some Teslas could\u2014in rare circumstances\u2014violate local traffic laws and"
        " potentially increase the risk of a collision if a driver fails to intervene,"
        " according to federal safety regulators.",
    ),
]
# Real records of the third held-out sample's periods (bench/README.md, Stories, Precision): in
# each pair a headline word or two and a topic's words ("self" and "driving", "facial" and
# "recognition"), and a neighbourhood's list that holds both. Waymo's San Francisco permit
# (Reuters, 13 December 2022) and its Phoenix airport service (ABC, 16 December); the IRS
# dropping ID.me's face recognition (TechSpot, WSJ, February 2022) and Montana's hearing of two
# face recognition companies (Billings Gazette), the Democrats' letter on Clearview (Common
# Dreams). Two events each, leniently too.
TOPIC_OF_TWO_EVENTS = [
    (
        (
            "Waymo seeks permit to sell self-driving car rides in San Francisco",
            "Alphabet Inc's Waymo has applied for the final permit it needs in California before"
            " it can sell fully autonomous rides, the company told Reuters on Tuesday.",
        ),
        (
            "Phoenix airport 1st to offer self-driving ride service Waymo",
            "As Phoenix gets ready to host the Super Bowl, Mayor Kate Gallego has announced Sky"
            " Harbor International Airport will be the world's first airport to offer the"
            " self-driving ride-hailing service Waymo",
        ),
    ),
    (
        (
            "IRS will transition away from facial recognition after wave of criticism",
            "A hot potato: Privacy advocates have managed to convince lawmakers that the IRS"
            " shouldn\u2019t use a facial recognition system such as ID.me due to concerns about"
            " privacy, identity protections, and unequal access to reliable broadband in the US."
            " Other ...",
        ),
        (
            "Facial recognition companies attempt to appease state lawmakers",
            "Two facial recognition companies on Wednesday testified before state lawmakers hoping"
            " to placate their concerns over the software, one of which was reportedly dumped"
            " days earlier by the IRS over ...",
        ),
    ),
    (
        (
            "IRS Backs Away From Facial Recognition to Verify Taxpayers\u2019 Identities",
            "WASHINGTON\u2014The Internal Revenue Service is backing off use of a plan with a"
            " private facial-recognition system to authenticate taxpayers\u2019 identities for"
            " online accounts, the agency said Monday after criticism from lawmakers in both"
            " parties over privacy ...",
        ),
        (
            "Democrats Urge Federal Agencies to Abandon Use of Facial Recognition",
            "\"Facial recognition tools pose a serious threat to the public's civil liberties and"
            " privacy rights, and Clearview AI's product is particularly dangerous,\" warn four"
            " progressive lawmakers. A quartet of progressives in Congress sent letters to five"
            " U.S ...",
        ),
    ),
]


def test_topic_words_that_make_three_shared_words_ask_the_excerpts() -> None:
    """Three shared words made up with topic words ("waymo", "ride", "self", "driving") are one
    event by the headlines alone, and with both excerpts when the texts share one distinctive
    word more (Tesla's recall: "beta"); Waymo's permit and its airport service, whose texts share
    nothing more, are two (three days apart: no name within hours makes up for it)."""
    (first, first_text), _, (third, third_text) = TESLA_RECALL
    assert same_event(titled(first), titled(third))
    assert same_event(excerpted(first, first_text), excerpted(third, third_text))
    assert same_event(excerpted(third, third_text), excerpted(first, first_text))
    (permit, permit_text), (airport, airport_text) = TOPIC_OF_TWO_EVENTS[0]
    assert same_event(titled(permit), titled(airport))
    three_days = timedelta(days=3) - timedelta(minutes=37)
    seeks = excerpted(permit, permit_text)
    offers = dataclasses.replace(
        excerpted(airport, airport_text), published=seeks.published + three_days
    )
    assert not same_event(seeks, offers)
    assert not same_event(offers, seeks)


@pytest.mark.parametrize(("one", "other"), TOPIC_OF_TWO_EVENTS[1:])
def test_texts_make_up_for_no_headlines_that_share_only_a_topic(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    """Headlines that share only topic words ("facial recognition": the field, no particular of
    an event) are not made up for by texts that share three distinctive words: the IRS dropping
    ID.me and a state hearing of face recognition companies share "concern", "irs" and
    "lawmakers"; the IRS and the Democrats' letter on Clearview "agency", "lawmakers" and
    "privacy"."""
    first, second = excerpted(*one), excerpted(*other)
    second = dataclasses.replace(second, published=first.published + timedelta(days=3))
    assert not same_event(first, second)
    assert not same_event(second, first)
    assert not same_event(titled(one[0]), titled(other[0]))


# Pairs of one event of the development sample whose headlines share two words but no
# distinctive one ("unmanned" and half a word; "OpenAI" and "speech"): their excerpts make up
# for it (three distinctive words shared by the texts).
EXCERPTS_MAKE_UP = [
    (
        (
            "Two Chinese Cities Approve Baidu\u2019s Unmanned Self-Driving Taxis",
            "China, seeking to catch up to the U.S. in autonomous driving cars, has been"
            " increasingly active in setting up regulations that allow such vehicles on public"
            " roads.",
        ),
        (
            "Chonqqing, Wuhan kick off commercial operation of unmanned auto-driving business",
            "Technology giant Baidu on Monday announced it has secured the first permit in China"
            " to offer commercial fully driverless robotaxi service to the public on open roads.",
        ),
    ),
    (
        (
            "OpenAI open-sources Whisper, a multilingual speech recognition system",
            "OpenAI has released Whisper, a robust speech recognition model that can understand"
            " and transcribe multiple languages.",
        ),
        (
            "New AI model from OpenAI automatically recognizes speech and translates to English",
            "OpenAI released a new open source AI model called Whisper that recognizes and"
            " translates audio at a level that approaches human recognition ability.",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), EXCERPTS_MAKE_UP)
def test_excerpts_make_up_for_headlines_of_two_words_without_a_distinctive_one(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    assert not same_event(titled(one[0]), titled(other[0]))
    assert same_event(excerpted(*one), excerpted(*other))
    assert same_event(excerpted(*other), excerpted(*one))


def test_texts_make_up_with_three_distinctive_words_for_two_headline_words_not_common() -> None:
    """Headlines that share a name and a topic word ("meta", "chatbot") fall short; texts
    that share three distinctive words besides make up for it, not two, nor three of which
    one is a name, a topic word or common; nor for headlines that share one word, or two of
    which one is common."""
    one, other = "Meta chatbot test", "Meta's chatbot"
    three, two = (
        ("quarnel tibbet vexel", "vexel tibbet quarnel"),
        ("quarnel tibbet", "tibbet quarnel"),
    )
    assert not same_event(titled(one), titled(other))
    assert same_event(excerpted(one, three[0]), excerpted(other, three[1]))
    assert not same_event(excerpted(one, two[0]), excerpted(other, two[1]))
    for weak in ("intel", "robot"):
        assert not same_event(
            excerpted(one, f"{two[0]} {weak}"), excerpted(other, f"{weak} {two[1]}")
        )
    assert not same_event(excerpted(one, three[0]), excerpted(other, three[1]), {"vexel"})
    assert not same_event(excerpted("Meta test", three[0]), excerpted("Meta's bet", three[1]))
    assert not same_event(excerpted(one, three[0]), excerpted(other, three[1]), {"chatbot"})


# Pairs of the second development sample (2021-2024; bench/README.md, Stories) and the first,
# within hours of each other, whose headlines share a word written as a name (`written_names`)
# and whose excerpts add no distinctive word: refused by `_texts_agree`, one event each.
NAMES_OF_ONE_EVENT = [
    (  # two distinctive headline words, "lakehouse" written as a name
        (
            "Databricks Introduces New Generative AI Tools, Investing in Lakehouse AI",
            "Databricks' data-centric approach to AI makes it easier to build, deploy and manage"
            " large language model (LLM) applications, enabling customers to accelerate their"
            " generative AI journey SAN",
        ),
        (
            "Databricks continues generative AI push, launches LakehouseIQ, Lakehouse AI tools",
            "Databricks debuted LakehouseIQ for conversational querying of data and new Lakehouse"
            " AI tools to help enterprises build generative AI.",
        ),
    ),
    (  # one headline word, "canva", and the texts "translate", "magic", "100"
        (
            "Canva\u2019s new AI tools might replace your video editor",
            "and they can automatically translate it with Canva\u2019s new AI-powered translate"
            " feature that supports more than 100 languages. Once you have the initial design,"
            " Canva has Magic Edit and Magic Eraser to help you refine it.",
        ),
        (
            "Canva Can Now Generate Custom Templates, Thanks To AI",
            "Recognizing the need for global communication, Canva's Translate tool allows users to"
            " convert their text into over 100 different languages with just a click, broadening"
            " their audience reach. Finally, Magic Write, Canva\u2019s AI-powered copywriting"
            " assistant ...",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), NAMES_OF_ONE_EVENT)
def test_a_shared_name_needs_one_distinctive_word_more_within_hours(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    first, second = excerpted(*one), excerpted(*other)
    assert same_event(first, second)
    assert same_event(second, first)
    hours = timedelta(hours=NAME_HOURS)
    near = dataclasses.replace(second, published=first.published + hours)
    assert same_event(first, near) and same_event(near, first)
    # a day later, an analysis or a follow-up shares the names as much: asked what main asks
    later = dataclasses.replace(second, published=first.published + hours + timedelta(hours=1))
    assert not same_event(first, later) and not same_event(later, first)


def test_a_name_needs_a_word_more_and_is_no_listed_name_nor_common() -> None:
    """The headlines share "lakehouse", written as a name in an excerpt: with a second
    distinctive headline word ("vexel"), or a distinctive word the excerpts add ("tibbet"), one
    event; not alone, nor with the second word common or a topic word, nor when the name is
    common or a listed company's, nor when "lakehouse" is not written as a name."""
    name, plain = "the new Lakehouse, says quarnel", "the new lakehouse, says quarnel"

    def pair(one: str, other: str, excerpt: str = name, more: str = "") -> tuple[Record, Record]:
        return excerpted(one, f"{excerpt} {more}"), excerpted(other, f"zorble {more}")

    assert same_event(*pair("vexel lakehouse", "lakehouse vexel"))
    assert not same_event(*pair("vexel lakehouse", "lakehouse vexel", plain))
    assert not same_event(*pair("vexel lakehouse", "lakehouse vexel"), {"vexel"})
    assert not same_event(*pair("robot lakehouse", "lakehouse robot"))
    assert same_event(*pair("the lakehouse", "lakehouse", more="tibbet"))
    assert not same_event(*pair("the lakehouse", "lakehouse", plain, more="tibbet"))
    assert not same_event(*pair("the lakehouse", "lakehouse"))
    assert not same_event(*pair("the lakehouse", "lakehouse", more="tibbet"), {"lakehouse"})
    assert not same_event(*pair("the lakehouse", "lakehouse", more="tibbet"), {"tibbet"})
    assert not same_event(*pair("the nvidia", "nvidia", "the new Nvidia, says quarnel", "tibbet"))
    # the word more in one record's headline and the other's excerpt, either way round
    assert same_event(
        excerpted("the lakehouse tibbet", name), excerpted("lakehouse", "zorble tibbet")
    )
    assert same_event(
        excerpted("lakehouse", f"{name} tibbet"), excerpted("tibbet lakehouse", "zorble")
    )


def test_written_names_at_their_edges() -> None:
    """A capital from a word's second letter on ("iPhone", "DALL-E") is a name in title case
    too; title case is told by the words of four letters or more (numbers and short words count
    for nothing), at `_TITLE_CASE_SHARE` of them or more; a capital after " - ", or after the
    ellipsis that opens a cut excerpt, begins a clause, not a name."""
    assert written_names("Apple Unveils New iPhone With AI Camera", "") == {"iphone"}
    assert written_names("Tesla Unveils DALL-E Rival In Texas", "") == {"dall"}
    assert written_names("Acme Unveils Robot 2023 2024 2025 in the lab", "") == set()  # 3 of 4
    assert written_names("Big Acme Wins Over the small lab and its parts", "") == set()  # 3 of 5
    assert written_names("Fed Says Rates To Stay; Acme and the AI lab at 2023 expo", "") == set()
    assert written_names("chip shortage eases - Analysts expect more", "") == set()
    assert written_names("", "\u2026Acme said the chip was late") == set()
    assert written_names("", "the chip, Acme said, was late") == {"acme"}


def test_written_names() -> None:
    """Capitalized where a sentence would not be, capitals inside a word, letters and digits."""
    assert written_names(
        "Databricks continues generative AI push, launches LakehouseIQ, Lakehouse AI tools", ""
    ) == {"lakehouseiq", "lakehouse"}  # "Databricks" begins the headline: nothing to tell
    assert written_names("Google Imagen Is The Latest AI That Can Create Images From Text", "") == (
        set()
    )  # title case: capitals say nothing ("AI" is no headline word)
    assert written_names("Samsung Gauss AI Unveiled: A Revolution Set to Power Galaxy S24", "") == {
        "s24"
    }
    assert written_names("", "The chips are the DGX GH200. Apollo Go said on Wednesday") == {
        "dgx",
        "gh200",
        "go",
    }  # "Apollo" after a full stop, "Wednesday" a weekday
    assert written_names("", "the deal \u2013 Clipdrop and Jasper's Art") == {
        "jasp",
        "art",
    }  # "Clipdrop" after a dash


# Pairs of the fourth held-out sample (2021-2024; bench/README.md, Stories) that hold a common URL
# and that `same_event` linked: their headlines share one subject's name ("Elon Musk", "Google")
# or a phrase of the field ("next-generation"), and each names a particular of its own that the
# other record's headline and excerpt lack (the TPU's I/O Developer Conference against LaMDA,
# Khosla against Grok and xAI): two events each. (Rezo.ai against Adroit Robotics, "raises seed
# funding", their headlines now part alone: `FIELD_WORDS_OF_TWO_EVENTS`.)
OWN_NAMES_OF_TWO_EVENTS = [
    (
        (
            "Google Launches Next-Generation AI Chip at I/O Developer Conference",
            "Google made some noteworthy announcements at its I/O Developer Conference on Tuesday,"
            " including the launch of its next-generation custom Tensor Processing Units (TPU) AI"
            " chips. The fourth iteration of the TPU chip is designed to train and run machine"
            " learning models faster than ever before.",
        ),
        (
            "Google demos LaMDA, a next-generation AI for dialogue",
            "At Google I/O 2021, Google demoed LaMDA, a next-generation AI model designed for"
            " different dialogue applications.",
        ),
    ),
    (
        (
            "Elon Musk Can\u2019t Sue His Way To AI Breakthroughs, Khosla Says",
            "Billionaire Elon Musk can\u2019t sue his way into artificial general intelligence,"
            " fellow billionaire and OpenAI investor Vinod Khosla said in an interview on"
            " Bloomberg TV.",
        ),
        (
            "Elon Musk says his AI startup xAI will open-source Grok chatbot, ChatGPT's rival",
            "Elon Musk said on Monday his artificial intelligence firm xAI will open-source"
            " \"Grok\", a chatbot rivaling OpenAI's ChatGPT, this week. The billionaire's startup"
            " launched the AI model to a small group of users last November. In a podcast episode"
            " with Lex Fridman, Musk suggested that he liked the concept of open-source AI.",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), OWN_NAMES_OF_TWO_EVENTS)
def test_headlines_that_each_name_a_particular_the_other_record_lacks_are_two_events(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    """The headlines alone link these pairs (three shared words, or two distinctive ones); with
    the excerpts, each headline names a particular (Adroit, LaMDA, Grok) that the other record
    does not mention, where the reports of one event repeat each other's names: two events."""
    assert same_event(titled(one[0]), titled(other[0]))
    first, second = excerpted(*one), excerpted(*other)
    second = dataclasses.replace(second, published=first.published + timedelta(days=3))
    assert not same_event(first, second)
    assert not same_event(second, first)


# Pairs of one event: a name one headline holds alone ("Adroit" against "Brazil"; "Conference")
# is in the other's excerpt, or is a figure written two ways ("$2.5bn", "$2.5b"), or its own
# excerpt does not repeat it (the headline's wording): no particular of its own.
OWN_NAMES_OF_ONE_EVENT = [
    (
        (
            "EXCLUSIVE: Brazilian ag AI startup Adroit Robotics raises seed funding",
            "Adroit Robotics' LeafSense tech is being used by growers to optimize the productivity"
            " of citrus orchards - and coffee and avocados could be next.",
        ),
        (
            "Brazil: AI startup Adroit Robotics raises seed funding",
            "Brazilian startup Adroit Robotics has raised 2.25 million reals ($427,000) in seed"
            " funding. The capital has come in from several new private investors, including"
            " Pericles Pereira,",
        ),
    ),
    (
        (
            "Google launches the next generation of its custom AI chips",
            "At its I/O developer conference, Google today announced the next generation of its"
            " custom Tensor Processing Units (TPU) AI chips. This is the fourth generation of"
            " these chips, which Google says are twice as fast as the last version.",
        ),
        OWN_NAMES_OF_TWO_EVENTS[0][0],
    ),
    (
        (
            "Waymo raises $2.5bn to rev self-driving cars",
            "There\u2019s no greater challenge in artificial intelligence than building and"
            " deploying fully autonomous technology at scale- Waymo co-chiefs Tekedra Mawakana"
            " and Dmitri Dolgov Investors taking part ...",
        ),
        (
            "Waymo raises $2.5b to rev self-driving cars",
            "Waymo on Wednesday said it has raised $2.5 billion from parent-company Alphabet and"
            " others in a new funding round to fuel its mission of getting self-driving cars on"
            " the road.",
        ),
    ),
    (  # the development sample of the third (Clearview's UK fine): "Met" and "UK" in a
        # headline only ("the Metropolitan Police" in the excerpt), wording, no particulars
        (
            "Facial recognition company used by Met Police fined millions by information watchdog",
            "A facial recognition company used by the Metropolitan Police has been ordered to"
            " delete billions of Facebook photos and fined \u00a37.5m after breaking data"
            " protection laws. Clearview",
        ),
        (
            "UK watchdog fines facial recognition firm \u00a37.5m over image collection",
            "Clearview AI hit with penalty for collecting images of people from social media and"
            " web to add to global database",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), OWN_NAMES_OF_ONE_EVENT)
def test_a_name_the_other_record_repeats_or_a_figure_is_no_particular_of_its_own(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    first, second = excerpted(*one), excerpted(*other)
    assert same_event(first, second)
    assert same_event(second, first)


# Pairs of the fourth and fifth held-out samples (2020-2021; issue 13) that hold a common URL and
# that `same_event` linked on their headlines alone: they share only how a round or a round-up is
# told ("secures", "series", "funding", "raises", "investment"), when ("January 2020") and an
# amount ("$20M"), or a word of the field besides ("fintech", "medical"), never the company: two
# startups' rounds, or two publications' monthly round-ups, each.
FIELD_WORDS_OF_TWO_EVENTS = [
    ("GumGum Secures $22M in Series B Funding", "Aisera Secures $20M in Series B Funding"),
    (
        "Aisera Secures $20M in Series B Funding",
        "SoftBank-backed Eureka AI bags $20m in series B round",
    ),
    (
        "AI-powered Startup SenseHawk Raises $5.1 Mn In Series A led by Alpha Wave Incubation",
        "Emotion AI Startup Entropik Raises $8 Mn In Series A Funding",
    ),
    (
        "Rezo.ai Raises Seed Funding Led By Modulor Capital",
        "Brazil: AI startup Adroit Robotics raises seed funding",
    ),
    (
        "AI startup Justpoint just raised $1 million in funding for its mission to reform the"
        " medical malpractice system",
        "Biofourmis raises $100 million for AI remote medical tools",
    ),
    (
        "No-touch pay: These 11 fintech startups raised funding amid COVID-19 pandemic",
        "Singapore fintech startup raises seed funding to digitize corporate loans",
    ),
    ("Robotics investments recap: January 2020", "Startup Funding: January 2020"),
    (
        "Top 10 Robotics Investment and Funding in January 2020",
        "Robotics investments recap: January 2020",
    ),
    (
        "Top 10 Robotics Investment and Funding in January 2020",
        "Top Artificial Intelligence Funding in January 2020",
    ),
]


@pytest.mark.parametrize(("one", "other"), FIELD_WORDS_OF_TWO_EVENTS)
def test_headlines_that_share_only_words_of_funding_dates_and_amounts_are_two_events(
    one: str, other: str
) -> None:
    """Funding words, months, years and amounts are the field's (`FIELD_WORDS_LISTED`, half a
    word, no particular; an amount no particular on its own): every round of a week is "raises
    $20M in Series B funding", every round-up of a month "January 2020". Without them these
    headlines share at most one word: two events."""
    assert not same_event(titled(one), titled(other))
    assert not same_event(titled(other), titled(one))


# Pairs of one event of the fifth held-out sample (2020): they share the company (Biofourmis,
# Entropik, Arm) besides the field's words, or an amount with it ("$40 Billion" is as much a
# particular of Nvidia's purchase of Arm as two words).
FIELD_WORDS_OF_ONE_EVENT = [
    (
        (
            "Biofourmis raises $100 million for AI remote medical tools",
            "Biofourmis, a company developing platforms for AI remote patient monitoring and"
            " triage, has raised $100 million in venture capital.",
        ),
        (
            "SoftBank Leads $100 Million Investment In AI And Digital Therapeutics Startup"
            " Biofourmis",
            "Kuldeep Singh Rajput quit his PhD program to pursue a lofty goal: use artificial"
            " intelligence to predict disease before it happens.",
        ),
    ),
    (
        (
            "Emotion AI Startup Entropik Raises $8 Mn In Series A Funding",
            "The company shared its plan to use the funding amount to expand its presence in other"
            " geographies including the US, EU, SE Asia",
        ),
        (
            "Entropik, Indian Startup That Uses AI To Read User Emotions, Raises Funds",
            "Entropik Tech, a startup that specialises in facial recognition technology to"
            " interpret people\u2019s emotion as they watch video and other media, raised $8"
            " million in its fresh funding to strengthen its technology and expand its business.",
        ),
    ),
    (
        (
            "Nvidia's $40 billion Arm bet all about data centers, edge computing, AI",
            'Arm combination is compelling on multiple fronts and could be "a first class data'
            ' center platform" but now the parties just need regulators to buy into the deal.',
        ),
        (
            "NVIDIA to Acquire Arm For $40 Billion, Uniting NVIDIA\u2019s Leadership In AI with"
            " Arm\u2019s Computing Ecosystem",
            "NVIDIA and SoftBank Group Corp. announced a definitive agreement under which NVIDIA"
            " will acquire Arm Limited from SBG and the SoftBank Vision Fund (together,"
            " 'SoftBank') in a transaction valued at $40 billion.",
        ),
    ),
]


@pytest.mark.parametrize(("one", "other"), FIELD_WORDS_OF_ONE_EVENT)
def test_reports_of_one_round_or_deal_share_its_company_beside_the_field_words(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    """The field's words part rounds, not the reports of one: these share the company (the
    Biofourmis and SoftBank pair with an amount), and Nvidia's two headlines "Arm" and an amount
    that counts as two words, as "$40 billion" did when it was two ("40", "billion")."""
    first, second = excerpted(*one), excerpted(*other)
    assert same_event(first, second)
    assert same_event(second, first)


def test_an_amount_is_the_same_two_words_however_it_is_written() -> None:
    """ "$40B" and "$40 Billion" are one amount, two words of their own (`AMOUNT_MARK`: it counts
    as "$40 billion" did, "40" and "billion"), and no other word of the headline: not "40", not
    "billion" (a field word, were it left)."""
    short = headline_words(
        "NVIDIA pursuing \u2018giant AI opportunity\u2019 with $40B Arm acquisition"
    )
    long = headline_words("Nvidia\u2019s $40 billion Arm acquisition is about bringing AI down")
    amount = {f"{AMOUNT_MARK}40b", f"{AMOUNT_MARK}x40b"}
    assert short & long == {"nvidia", "arm", "acquisition"} | amount
    assert headline_words("raises $5.1 Mn") == {
        "raise",
        f"{AMOUNT_MARK}5p1m",
        f"{AMOUNT_MARK}x5p1m",
    }


def test_a_name_joined_to_its_number_by_a_hyphen_is_one_word() -> None:
    """ "COVID-19" is one word ("covid19"), as "GPT-3" is: two words, it alone made two of the
    three shared words that link headlines whatever their excerpts say. Words joined to words
    ("self-driving", "machine-learning") stay apart, and so do a number and the word after it."""
    assert headline_words("Covid-19 pressures on hospitals") == {"covid19", "pressure", "hospital"}
    assert headline_words("GPT-3 writes") == {"gpt3", "write"}
    assert headline_words("self-driving 5-star hospitals") == {
        "self",
        "driv",
        "star",
        "hospital",
    }


# Records of the fifth held-out sample (2020) whose headlines share "COVID-19" and "hospitals"
# only: a hospital's, a startup's and a study's work against the pandemic. While "COVID-19" was
# two words, the three shared words linked them whatever their excerpts said; now the excerpts,
# which share nothing more, part them (the records were published days apart, as these were: within
# `NAME_HOURS`, "COVID-19" is written as a name, `_names_agree`).
NARAYANA = (
    "Bengaluru\u2019s Narayana Hospitals employs artificial intelligence to fight Covid-19",
    "has broken away from the traditional doctor consultations to leverage artificial"
    " intelligence to reduce the risk of virus transmission. Provision of patients\u2019 vitals in"
    " real-time on doctors\u2019 mobile phones, robots that transport blood samples ...",
)
QVENTUS = (
    "This AI Startup Helps Hospitals Navigate Operational Troubles Of Covid-19 And Beyond",
    "M Health Fairview, one of the largest health systems in Minnesota, got an urgent message from"
    " one of its vendors: Mountain View, California-based artificial intelligence startup Qventus."
    " The 13-hospital system had contracted the company to help streamline its operations,",
)
WARWICK = (
    "Study Explores the Use of Robots, AI to Ease COVID-19 Pressures on Hospitals",
    "Hospitals across the globe could raise their productivity and efficiency as well as"
    " increase safety and quality while limiting and decreasing charges.",
)


@pytest.mark.parametrize(("one", "other"), [(NARAYANA, QVENTUS), (WARWICK, QVENTUS)])
def test_records_that_share_a_disease_and_a_place_of_care_are_two_events(
    one: tuple[str, str], other: tuple[str, str]
) -> None:
    first, second = excerpted(*one), excerpted(*other)
    second = dataclasses.replace(second, published=first.published + timedelta(days=3))
    assert not same_event(first, second)
    assert not same_event(second, first)


# Headlines of the blind samples' round-ups, newsletters and digests: each an event of its own on
# the strict reading, joined to one of the stories it tells by the words they share.
ROUND_UPS = [
    "The Morning After: Getty Images sues AI art generator",
    "This Week In XR: Stability AI Raises $101 Million, VITURE Raises $10 Million For Wearable",
    "AI News roundup: ChatGPT blocked in Italy, Google denies using ChatGPT data and more",
    "Daily briefing: IBM has backed out of the facial-recognition business",
    "Data Digest: sports, robots and the week's numbers",
    "AI Weekly: Announcing our \u2018Automation and jobs in the new normal\u2019 special issue",
    "Robotics investments recap: January 2020",
    "AWS Re:Invent - A Roundup Of ML And AI Announcements",
    "Watch Now: See Walmart's self-driving trucks in action, and more of today's top videos",
    "Why IBM abandoned facial recognition, and more tech news you need to know today",
    "Tesla Full Self-Driving in hacked AR view looks fascinating, and more",
]
# Headlines of events that name several things or begin with a name and a colon.
NOT_ROUND_UPS = [
    "Tesla, Waymo, and more must now report all self-driving accidents to the government",
    "Google unveils advanced AI model to beef up Bard, Search, Maps and more",
    "Brazil: AI startup Adroit Robotics raises seed funding",
    "STOSSEL: Enjoy the ride",
    "Meta rounds up its AI research teams",
    "Getty Images suing artificial intelligence firm Stability AI for 'copying' photos",
    "Officials give a White House briefing on AI safety",
    "AI helps doctors digest medical records",
    "Nvidia unveiled its chips this week in Taipei",
]


def test_a_round_up_joins_a_story_only_as_one_article() -> None:
    """A round-up tells several stories and belongs to none: the words it shares with one of
    them ("Getty Images", "sues", "AI art") do not join it, its own article does."""
    morning = titled("The Morning After: Getty Images sues AI art generator")
    getty = titled("Getty Images sues AI art generator Stability AI")
    assert same_event(titled("Getty Images sues AI art generator"), getty)
    assert not same_event(morning, getty) and not same_event(getty, morning)
    copy = dataclasses.replace(getty, url=morning.url)
    assert same_event(morning, copy) and same_event(copy, morning)


# Headlines of the blind samples that ask or explain: analysis, explainers, how-tos and columns,
# each joined to a story of its field by two shared words.
ASKING_HEADLINES = [
    "How AI is about to change your Google search results",
    "Why 2023 was a such bumpy ride for self-driving cars in The City",
    "What to Know About OpenAI\u2019s New AI Video Generator Sora",
    "In Self-Driving, Amazon Invests While Walmart Partners",
    "Can a Self-Driving 40-Ton Truck resolve some supply chain issues? Developer says yes",
    "Will artificial intelligence replace artists after winning a competition?",
    "Is AI coming for your job?",
    "Where robots deliver: a map",
    "When will self-driving trucks arrive",
    "Who owns AI art",
    "Does ChatGPT dream",
    "Do robots pay taxes",
    "Are chatbots safe",
    "Could AI write this",
    "Should AI vote",
    "Would you ride a robotaxi",
]
# Headlines of reports, some with those words inside or as the start of a longer word.
NOT_ASKING = [
    "Taylor Swift and No AI Fraud Act: How Congress plans to fight back against AI deepfakes",
    "Walmart says it will be making self-driving deliveries in 2021",
    "Inflection AI raises $1.3 billion",
    "Howard University opens an AI lab",
    "Whoop adds an AI coach",
    "Canada funds AI research? No, Ottawa says",
    "MediaTek likely to incorporate Nvidia AI GPU in smartphone SoC?",
    "Isomorphic Labs signs two deals",
    "Doordash tests robot delivery",
]


@pytest.mark.parametrize(
    ("titles", "kind"),
    [(ROUND_UPS, ROUND_UP), (ASKING_HEADLINES, ASKING), (NOT_ROUND_UPS + NOT_ASKING, REPORT)],
)
def test_a_headline_is_a_report_one_that_asks_or_a_round_ups(titles: list[str], kind: int) -> None:
    """A round-up that begins by asking ("Why IBM abandoned facial recognition, and more tech
    news ...") is a round-up."""
    assert [title for title in titles if headline_kind(title) != kind] == []


def test_a_headline_that_asks_joins_on_three_particulars_or_as_one_article() -> None:
    """Analysis of a field shares two words with its events ("Why Quantel's Zorbix matters"):
    the least evidence that joins two reports does not join it, three particulars or one
    article do, whichever of the two records asks."""
    report = titled("Quantel unveils Zorbix robot")
    assert same_event(titled("Quantel's Zorbix matters"), report)
    analysis = titled("Why Quantel's Zorbix matters")
    assert not same_event(analysis, report) and not same_event(report, analysis)
    explained = titled("Why Quantel's Zorbix Hexa matters")
    hexa = titled("Quantel unveils Zorbix Hexa robot")
    assert same_event(explained, hexa) and same_event(hexa, explained)
    copy = dataclasses.replace(report, url=analysis.url)
    assert same_event(analysis, copy) and same_event(copy, analysis)
    assert same_event(analysis, titled("How Quantel's Zorbix works"))  # two that ask


def test_amounts_in_euros_pounds_thousands_and_units_and_accents_dropped() -> None:
    """Every currency sign starts an amount, a thousands separator is no digit of it, an amount
    without a unit has none; a headline's accents are dropped, not its letters."""
    assert headline_words("raises \u20ac3bn") == {"raise", f"{AMOUNT_MARK}3b", f"{AMOUNT_MARK}x3b"}
    assert headline_words("raises \u00a37.5m") == {
        "raise",
        f"{AMOUNT_MARK}7p5m",
        f"{AMOUNT_MARK}x7p5m",
    }
    assert headline_words("$1,000 robots") == headline_words("$1000 robots")
    assert headline_words("$1,000 robots") == {"robot", f"{AMOUNT_MARK}1000", f"{AMOUNT_MARK}x1000"}
    assert headline_words("Caf\u00e9 \u00c5ngstr\u00f6m") == {"cafe", "angstrom"}


def test_three_shared_words_made_with_a_name_and_topic_words_ask_the_excerpts() -> None:
    """A listed name ("Nvidia") is no particular: headlines that share it, two distinctive words
    and two topic words ("self", "driving") make three words only with the topic words, and ask
    the excerpts, which share nothing more here: two events."""
    first = excerpted(
        "Nvidia Zorbix Quantel self-driving chip",
        "The chipmaker shows a processor for carmakers at its spring conference in California.",
    )
    second = excerpted(
        "Nvidia Zorbix Quantel self-driving robot",
        "A warehouse operator in Sweden says its delivery machines will use the design next year.",
    )
    assert same_event(titled(first.title), titled(second.title))
    second = dataclasses.replace(
        second, published=first.published + timedelta(hours=NAME_HOURS + 1)
    )
    assert not same_event(first, second) and not same_event(second, first)
