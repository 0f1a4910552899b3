"""Forms of personal data an adversarial audit got past the redaction boundary (conversations, production
feedback, the leak gate): each is redacted now, by the real detector (rules + spaCy NER), and the nearby
ordinary text it must leave alone stays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from llmops.config import RedactParams
from llmops.pii.normalize import shadow
from llmops.pii.redact import Redactor, public_channel
from llmops.pii.rules import iban_ok, nino_ok
from llmops.records import Conversation, Turn


@pytest.fixture(scope="module")
def redactor() -> Redactor:
    return Redactor(RedactParams())


def _conv(*texts: str, channel: str = "chat", agent_from: int | None = None) -> Conversation:
    """A conversation of ``texts`` as customer turns (agent turns from index ``agent_from`` on)."""
    return Conversation(
        conversation_id="c",
        channel=channel,
        created_at=datetime(2026, 3, 1, tzinfo=UTC),
        turns=[
            Turn(role="agent" if agent_from is not None and i >= agent_from else "customer", text=t) for i, t in enumerate(texts)
        ],
    )


@pytest.mark.parametrize(
    ("text", "secrets"),
    [
        # structured identifiers in the separators people type
        ("my card 4929.5521.0083.4415 was charged twice", ["4929", "5521", "0083", "4415"]),
        ("card no. 4024.2027.4083.7261 please", ["4024", "2027", "4083", "7261"]),  # fails Luhn: the cue decides
        ("IBAN: DE67-5001-0517-9412-7362-05", ["5001", "0517", "9412", "7362"]),
        ("NI PX 48 29 17 D", ["PX 48", "29 17"]),
        ("my national insurance number is QR 73 51 20 B", ["QR 73", "51 20"]),
        ("it is AB123456C", ["AB123456C"]),
        # dates of birth in more words and languages
        ("I was born on July 29th, 1961", ["29th", "1961"]),
        ("geboren am 17.04.1963", ["17.04.1963"]),
        ("née le 3 mars 1970", ["1970"]),
        ("DOB 14th of August 1972", ["1972"]),
        # e-mails hidden by escapes and spoken dots
        ("pelham\\u002estone\\u0040example\\u002ecom", ["pelham", "stone", "example"]),
        ("mail me: pelham\\u200bstone\\u0040example\\u002ecom", ["pelham", "stone"]),  # an escaped invisible inside
        ("ostrava dot pavel at gmail dot com", ["ostrava", "pavel"]),
        # UK postcodes
        ("post it to SW1A 1AA please", ["SW1A 1AA"]),
        # names the NER model does not see as typed
        ("HI THIS IS ZEPHYRINE QUALLSTROM, MY PARCEL IS LATE AGAIN", ["ZEPHYRINE", "QUALLSTROM"]),
        ("DEAR CRESSIDA VANTONGEREN, apply online.", ["CRESSIDA", "VANTONGEREN"]),
        ('{"name": "Tamsin Okonkwo", "order": 5}', ["Tamsin", "Okonkwo"]),
        ('{"customer_name": "leocadia sturmfels"}', ["leocadia", "sturmfels"]),
        ("Order form\nFull name: Ana Vasquez-Trill\nItems: 2", ["Ana", "Vasquez", "Trill"]),
        ("please write to mrs oriane vaszary-klemm about it", ["oriane", "vaszary", "klemm"]),
        ("thanks for nothing\n-- Balthazar Ekwueme-Oyelaran\nSent from my iPhone", ["Balthazar", "Ekwueme", "Oyelaran"]),
        ("Ana Castellanos-Whitby here, my order is late", ["Castellanos", "Whitby"]),
        ('{"user": "Evander Quayle", "q": "refund?"}', ["Evander", "Quayle"]),
        # an IBAN whose check digits fail is still an IBAN (mistyped, or one digit off a real account)
        ("IBAN DE20500105173382991104 please", ["500105173382991104"]),
        ("send it to NL-14-ABNA-0417-1643-02 today", ["ABNA", "0417", "1643"]),
    ],
)
def test_hostile_forms_are_redacted(redactor: Redactor, text: str, secrets: list[str]) -> None:
    out = redactor.redact_texts([text])[0]
    for secret in secrets:
        assert secret not in out, (text, out)


@pytest.mark.parametrize(
    "text",
    [
        "post it to me please",  # "post" is a cue only before a code with a digit
        "I was born in the summer",
        "Product code AB-1234 and SKU XJ-900 are in stock",  # acronym pairs are not shouting
        "WHERE IS MY PACKAGE",
        '{"product name": "Blender 3000", "price": 20}',
        "version 1.2.3 of the app",
        "model AB12 CDEF 1234 is broken",  # no IBAN country
        "User: where is my order?",  # a transcript's speaker label is no name field
    ],
)
def test_ordinary_text_near_those_forms_stays(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


def test_checksums_accept_the_separators_people_type() -> None:
    assert iban_ok("DE67-5001-0517-9412-7362-05") and iban_ok("DE67.5001.0517.9412.7362.05")
    assert not iban_ok("DE68-5001-0517-9412-7362-05")
    assert nino_ok("PX 48 29 17 D") and nino_ok("AB123456C")
    assert not nino_ok("QR 73 51 20 B") and not nino_ok("GB123456A") and not nino_ok("AB123456E")


def test_an_escape_in_the_shadow_maps_back_to_all_its_characters() -> None:
    text = "x \\u0070elham@x.co\\u006d y"
    sh = shadow(text)
    assert sh.text == "x pelham@x.com y"
    start, end = sh.to_original(sh.text.index("p"), sh.text.index(" y"))
    assert text[start:end] == "\\u0070elham@x.co\\u006d"


def test_a_channel_is_a_label_from_the_allowed_list() -> None:
    allowed = RedactParams().channel_allow
    assert public_channel("chat", allowed) == "chat" and public_channel("Email", allowed) == "email"
    assert public_channel("whatsapp:Ignatia Pellwether", allowed) == "whatsapp"
    assert public_channel("ignatia.pellwether", allowed) == "other"
    assert public_channel("Ignatia Pellwether", allowed) == "other"


def test_conversations_leave_with_an_allowed_channel_and_a_count(redactor: Redactor) -> None:
    before = redactor.channels_generalised
    out = redactor.redact_conversations(
        [_conv("where is my parcel", channel="whatsapp:Ignatia Pellwether"), _conv("where is my parcel", channel="chat")]
    )
    assert [c.channel for c in out] == ["whatsapp", "chat"]
    assert redactor.channels_generalised - before == 1
    assert redactor.report()["channels_generalised"] >= 1


def test_an_id_holding_a_first_name_is_hashed(redactor: Redactor) -> None:
    ids = ["ticket-wilhelmina-strand-2291", "bitext-00015", "twitter-LgwAXtbbEm0mBvDrGmjk", "034eba5948ab2005"]
    public = redactor.public_ids(ids)
    assert public[0].startswith("anon-") and "wilhelmina" not in public[0]
    assert public[1:] == ids[1:]


def test_a_value_split_over_two_turns_is_redacted_in_both(redactor: Redactor) -> None:
    out = redactor.redact_conversations(
        [
            _conv("my email is halvard.teasdale", "@fastmail.fm sorry, hit enter too early", "thanks"),
            _conv("my IBAN is ES9121000418", "450200051332 (the rest of it)"),
            _conv("order 4111", "1111 1111 1111. I was charged twice"),  # a Luhn-valid card split in two
        ]
    )
    texts = [[t.text for t in c.turns] for c in out]
    flat = " | ".join(t for c in texts for t in c)
    for secret in ("halvard", "teasdale", "fastmail", "ES9121000418", "450200051332", "4111", "1111 1111"):
        assert secret not in flat, flat
    assert texts[0][2] == "thanks" and texts[1][1].endswith("(the rest of it)") and texts[2][1].endswith("was charged twice")
    escaped = redactor.redact_conversations([_conv("mail halvard\\u002eteasdale", "\\u0040fastmail.fm")])[0]
    assert "halvard" not in escaped.turns[0].text and "fastmail" not in escaped.turns[1].text


def test_a_phone_split_over_two_turns_is_redacted_in_both_and_numbers_that_only_meet_are_not(redactor: Redactor) -> None:
    split = [
        ("my number is 415 555", "0132"),
        ("you can reach me at (977) 625-", "2661"),
        ("my phone is 020 7946", "0958 after 5pm"),  # the first part alone already looks like a phone
        ("call me on +44 7700", "900123 thanks"),
    ]
    out = redactor.redact_conversations([_conv(a, b) for a, b in split])
    for (a, b), conv in zip(split, out, strict=True):
        first, second = (t.text for t in conv.turns)
        assert a.split()[-1] not in first and b.split()[0] not in second, (first, second)
    meet = [
        ("order 12345", "6789 is the tracking number"),  # no phone cue
        ("the flight was DL 1234", "5678 was the return"),
        ("call me on 415 555 0132", "12 days ago, nothing yet"),  # a whole phone, then a number of its own
        ("it costs 415", "555 dollars"),
    ]
    out = redactor.redact_conversations([_conv(a, b) for a, b in meet])
    for (_, b), conv in zip(meet, out, strict=True):
        assert conv.turns[1].text == b, conv.turns[1].text


def test_a_value_whole_in_one_turn_does_not_take_the_next_turns_first_word(redactor: Redactor) -> None:
    turns = ["mail anna.berg@example.org, card 4111 1111 1111 1111", "We wrote to anna.berg@example.org", "Sent it again"]
    out = redactor.redact_conversations([_conv(*turns, agent_from=1)])
    texts = [t.text for t in out[0].turns]
    assert texts[1].startswith("We wrote to <EMAIL_ADDRESS_1>") and texts[2] == "Sent it again", texts


def test_shouted_text_keeps_its_offsets_with_letters_whose_case_changes_length() -> None:
    from llmops.pii.detect import _unshout

    text = "HELLO THIS IS ẞOMEONE CALLING ANNA"
    assert len(_unshout(text)) == len(text) and _unshout(text).endswith("Anna")


def test_ordinary_turns_are_not_joined_into_values(redactor: Redactor) -> None:
    texts = ["I ordered 2 items", "12 days ago, still nothing", "my account is fine"]
    out = redactor.redact_conversations([_conv(*texts)])
    assert [t.text for t in out[0].turns] == texts


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("my surname is quallstrom", "quallstrom"),
        ("it's under the name hazelgrove", "hazelgrove"),
        ("this is zephyrine speaking, about my order", "zephyrine"),
        ("name's quallstrom btw", "quallstrom"),
        ("my first name is zephyrine and last name is quallstrom", "zephyrine"),
        ("my first name is zephyrine and last name is quallstrom", "quallstrom"),
        ("my name is ming", "ming"),
    ],
)
def test_lower_case_name_cues_find_the_name(redactor: Redactor, text: str, name: str) -> None:
    assert name not in redactor.redact_texts([text])[0]


@pytest.mark.parametrize(
    "text",
    [
        "my name is not showing on the account",
        "my name is spelled wrong on the card",
        "my name is on the account",
        "the name's wrong",
        "12 days ago it shipped",
    ],
)
def test_what_follows_a_name_cue_or_truecasing_is_no_name_when_it_is_a_state_or_verb(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


def test_a_name_after_its_cue_does_not_take_the_next_word(redactor: Redactor) -> None:
    assert redactor.redact_texts(["my name is anna and i need help"]) == ["my name is <PERSON_1> and i need help"]


def _dialogue(*turns: str) -> Conversation:
    """Turns alternating agent, customer, ...; "|" splits one speaker's run into several turns."""
    out = []
    for i, turn in enumerate(turns):
        out.extend(Turn(role="agent" if i % 2 == 0 else "customer", text=t) for t in turn.split("|"))
    return Conversation(conversation_id="c", channel="chat", created_at=datetime(2026, 3, 1, tzinfo=UTC), turns=out)


@pytest.mark.parametrize(
    ("question", "reply", "value"),
    [
        ("Can I have your date of birth please?", "12/04/1979", "12/04/1979"),
        ("What's the postcode?", "ls6 2qt", "ls6 2qt"),
        ("What's the name on the account?", "its under marchetti", "marchetti"),
        ("Can you confirm your account username?", "ghostrider_1187", "ghostrider_1187"),
        ("What's your sort code and account number?", "20-00-00 55779912 thanks", "55779912"),
        ("Could I get your full name and postcode please?", "anna kowalczyk, ls6 2qt", "kowalczyk"),
        ("Could I get your full name and postcode please?", "anna kowalczyk, ls6 2qt", "ls6 2qt"),
        ("Who am I speaking with?", "this is ottoline", "ottoline"),
        # the answers to one request, over several turns (ABCD's agents ask for two values at once)
        ("sure, would you give me your full name or account ID", "Alessandro Phoenix|aphoenix939", "aphoenix939"),
    ],
)
def test_a_reply_to_an_agents_request_is_the_value_asked_for(redactor: Redactor, question: str, reply: str, value: str) -> None:
    out = redactor.redact_conversations([_dialogue(question, reply)])[0]
    assert value not in " | ".join(t.text for t in out.turns[1:])


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("What's your postcode?", "why do you need that?"),
        ("What's the name of the product?", "the blue kettle"),
        ("Please confirm your date of birth", "I don't have it with me"),
        ("Do you and your spouse have the same last name?", "do not"),
        ("Did you want to know how Social Security can provide benefits?", "that could help"),
        ("Please DM us your full name and the email on the account", "sent"),
        ("Is there anything else I can help with?", "no thanks"),
        ("What's your phone number?", "my order arrived broken and I want to know why nobody answered me yesterday"),
    ],
)
def test_a_reply_that_is_no_value_of_the_asked_type_stays(redactor: Redactor, question: str, reply: str) -> None:
    out = redactor.redact_conversations([_dialogue(question, reply)])[0]
    assert out.turns[1].text == reply


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("07911123458 thats me", "07911123458"),  # a UK mobile needs no cue
        ("mob 07911 123456", "123456"),
        ("Tel. 030/12345678 (Büro)", "12345678"),
        ("mein Handy: 0151/23456789", "23456789"),
        ("Tel: +49 (0)89 / 12 34 56", "12 34 56"),
        ("📞 0176 98765432", "98765432"),
        ("nummer 06-12345678 graag terugbellen", "12345678"),
    ],
)
def test_phones_in_national_shapes_and_with_foreign_cues(redactor: Redactor, text: str, digits: str) -> None:
    assert digits not in redactor.redact_texts([text])[0]


def test_slashed_dates_are_no_phones(redactor: Redactor) -> None:
    assert redactor.redact_texts(["it came on 01/02/2024 at 10"]) == ["it came on 01/02/2024 at 10"]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("my postcode is ls6 2qt", "2qt"),
        ("postcode: SW1A1AA", "SW1A1AA"),
        ("PLZ 10115", "10115"),
        ("zipcode is 94107", "94107"),
        ("birthdate: 23/11/1985", "1985"),
        ("geb. 14.02.1979", "1979"),
        ("bday is 7th march 88", "march 88"),
        ("DOB - 1985-11-24", "1985"),
        ("date of birth - 11/11/1966", "1966"),
        ("I was born on the 3rd of may 1990", "1990"),
    ],
)
def test_postcodes_and_dates_of_birth_after_their_cues(redactor: Redactor, text: str, value: str) -> None:
    assert value not in redactor.redact_texts([text])[0]


def test_cue_words_without_a_value_stay(redactor: Redactor) -> None:
    texts = ["the post code is required", "post it to me", "my birthday is next week"]
    assert redactor.redact_texts(texts) == texts


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("sort code 20-00-00 acc 55779911", "20-00-00"),
        ("sort code 20-00-00 acc 55779911", "55779911"),
        ("a/c 50100234567891 please", "50100234567891"),
        ("mi DNI es 12345678Z", "12345678Z"),
        ("BSN 111222333 voor de verzekering", "111222333"),
        ("PESEL 85070912345", "85070912345"),
        ("personnummer 850709-9805", "9805"),
        ("PAN: ABCPD1234E", "ABCPD1234E"),
        ("Steueridentifikationsnummer: 12345678903", "12345678903"),
        ("NHS number 943 476 5919", "5919"),
        ("Reisepass C01X00T47", "C01X00T47"),
        ("router MAC is 3C:22:FB:7A:1D:9E", "1D:9E"),
        ("I'm at 51.50341, -0.12764 where is the driver", "51.50341"),
        ("eth wallet 0x71C7656EC7ab88b098defB751B7401B5f6d8976F", "0x71C7"),
        ("send to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "bc1qar0"),
        ("account holder: Wenceslas Obradović", "Obradović"),
        ("Name (as on ID): Osric Vandeleur", "Vandeleur"),
        ("Name on account - SIOBHAN MACGIOLLA", "MACGIOLLA"),
        ('{"first":"Hildegard","last":"Schwarzenbach"}', "Schwarzenbach"),
        ("name=radomir+jovanovic&email=radomir.j%40gmail.com", "jovanovic"),
        ("ferdinand.oyelaran[at]web[.]de", "oyelaran"),
        ("my email is zoltan.keresztes at freemail.hu", "keresztes"),
        ("ivo dot petrov at abv dot bg", "petrov"),
        ("its quillon.marsh@gmail", "quillon"),
        ("my gmail is tavishwright1988", "tavishwright1988"),
    ],
)
def test_identifiers_of_other_countries_networks_wallets_and_forms(redactor: Redactor, text: str, value: str) -> None:
    assert value not in redactor.redact_texts([text])[0]


@pytest.mark.parametrize(
    "text",
    [
        "You must get a driver license within 30 days.",
        "What if my driver's license is printed in another language?",
        "i ordered at amazon.com yesterday",
        "version 2.1 at apple.com is out",
        "the PAN card details page",
        "the frying pan 28cm and a tin 400g of beans",
        "I am locked out of my Gmail account",
    ],
)
def test_id_cues_without_an_id_and_shops_after_at_stay(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


@pytest.mark.parametrize(
    "text",
    [
        "ordered extra virgin olive oil but got sunflower",  # a noun name after a determiner, alone
        "Box 2 of 3 arrived crushed.",
        "Room 101 in my hotel booking was wrong.",
        "It was delivered on 3 March 2026 at 10am but I wasn't home.",
        "Can I change the delivery slot to Wednesday 9-12?",
        "I'm 5 mins away from the store.",
        "I'm 2 weeks into the trial.",
        "The firmware 4.2.1.7 update bricked my router.",
        "On Mon, 2 Mar 2026 at 10:14 the parcel left",
    ],
)
def test_everyday_nouns_units_dates_and_versions_are_no_personal_data(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("thanks hazel for the help", "hazel"),
        ("hi im olive", "olive"),  # cues in a row ("hi", "im") before the name
        ("hazel smith called yesterday", "smith"),
        ("I spoke to Heather yesterday", "Heather"),
        ("for the actions we are taking. ~Heather", "Heather"),
        ("Esat Jeknic\n3378 Lovers Lane\nSuite 680\nPort Whangarei", "Suite 680"),
        ("server 192.168.10.25 is down", "192.168.10.25"),
    ],
)
def test_names_that_are_nouns_still_count_after_a_cue_or_capitalised_in_a_sentence(
    redactor: Redactor, text: str, name: str
) -> None:
    assert name not in redactor.redact_texts([text])[0]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("hola me llamo catalina ibarguren y no me llegó el pedido", "ibarguren"),
        ("booking for 4 under Haverbrook, 7pm friday", "Haverbrook"),
        ("Lieferadresse: Hauptstraße 42, 10115 Berlin", "Hauptstraße 42"),
        ("Lieferadresse: Hauptstraße 42, 10115 Berlin", "10115"),
        ("bitte an Musterweg 7a, 80331 München schicken", "Musterweg"),
        ("adresse: 12 rue de la Paix, 75002 Paris", "75002"),
        ("envíenlo a Calle de Alcalá 123, 3º izq, 28009 Madrid", "Alcalá 123"),
        ("spedire a Via Giuseppe Garibaldi 15, 20121 Milano", "20121"),
        ("Keizersgracht 123, 1015 CJ Amsterdam", "1015 CJ"),
        ("deliver to 200 King St W, Toronto ON M5V 3L9", "M5V 3L9"),
        ("PO Box 4471, Anchorage AK 99509", "4471"),
        ("i live at 5 elm close, hitchin sg4 9rt", "sg4 9rt"),
        ("ul. Marszałkowska 84/92 m. 15, 00-514 Warszawa", "00-514"),
        ("ip: 81[.]2[.]69[.]143", "143"),
        ("reg is AB12 CDE, silver golf", "AB12 CDE"),
        ("my plate 7ABC123 got the parking fine", "7ABC123"),
        ("VIN 1HGCM82633A004352", "1HGCM82633A004352"),
        ("acc no: 31926819, sort 40-47-84", "40-47-84"),
        ("my discord is nightowl#4821", "nightowl"),
        ("reddit u/throwaway_kai_1990", "throwaway_kai_1990"),
        ("steam username: xXmarekvoss92Xx", "marekvoss92"),
        ("my profile linkedin.com/in/ottilie-brannigan-4b21a", "brannigan"),
        ("facebook.com/profile.php?id=100004567891234", "100004567891234"),
        ("coords 40°44'54.3\"N 73°59'08.5\"W", "54.3"),
        ("| name | gideon ashworth |\n| phone | 07700 900456 |", "ashworth"),
    ],
)
def test_addresses_abroad_vehicles_handles_and_profiles(redactor: Redactor, text: str, value: str) -> None:
    assert value not in redactor.redact_texts([text])[0]


@pytest.mark.parametrize(
    "text",
    [
        "Flight BA 2490 was cancelled, need a refund.",
        "My username is wrong on the receipt.",
        "still buffering\n1/2 the time",
        "the ring 7 size is too small",
    ],
)
def test_flights_words_and_sizes_are_no_address_plate_or_handle(redactor: Redactor, text: str) -> None:
    assert redactor.redact_texts([text]) == [text]


def test_a_nested_metadata_key_is_redacted_like_a_value(redactor: Redactor) -> None:
    product = {"ottoline.grieve@gmail.com": "X1", "sku": {"anna.b@example.org": 2}}
    conv = _conv("hi").model_copy(update={"metadata": {"product": product, "intent": "refund"}})
    meta = redactor.redact_conversations([conv])[0].metadata
    assert "ottoline" not in str(meta) and "anna.b" not in str(meta)
    assert meta["intent"] == "refund" and "X1" in meta["product"].values() and 2 in meta["product"]["sku"].values()


@pytest.mark.parametrize(
    "turns",
    [
        ("Which iPhone model do you have?", "iPhone 13 pro"),
        ("Is your microphone working?", "yes, tried 2 different ones"),
        ("Can I take your name please?", "hold on|I'll hold. Please hold the power button"),
        ("What's the product name?", "Galaxy Buds 2"),
        ("Did you get our email?", "yes got it at 5pm"),
        ("What's your postcode?", "hang on|it's the 2nd time this happened"),
    ],
)
def test_no_value_is_read_into_replies_that_do_not_give_one(redactor: Redactor, turns: tuple[str, str]) -> None:
    conv = _dialogue(*turns)
    out = redactor.redact_conversations([conv])[0]
    assert [t.text for t in out.turns] == [t.text for t in conv.turns]


def test_a_value_after_a_wait_and_before_a_signature_is_still_the_answer(redactor: Redactor) -> None:
    waited = _dialogue("What's your postcode?", "hang on|ls6 2qt")
    signed = _dialogue("Your account number please", "A12345\n\nSent from my iPhone")
    out = redactor.redact_conversations([waited, signed])
    assert "2qt" not in out[0].turns[2].text and "A12345" not in out[1].turns[1].text


@pytest.mark.timeout(20)
def test_runs_of_punctuation_in_a_reply_do_not_hang_the_answer_reader(redactor: Redactor) -> None:
    # the courtesy-stripping pattern once backtracked exponentially: 25 "!" took 31 s, 40 would take hours
    reply = "I already did" + "!" * 40 + " nobody replies"
    out = redactor.redact_conversations([_dialogue("Please DM us your account number so we can look into it.", reply)])
    assert out[0].turns[1].text == reply


def test_nested_metadata_keys_keep_every_value_and_name_no_kind(redactor: Redactor) -> None:
    meta = {"product": {"ana@x.com": 1, "Ana@x.com": 2, "ANA@x.com": 3}, "customer_phone": {"home": "+44 7700 900123"}}
    conv = _conv("I work from home").model_copy(update={"metadata": meta})
    out = redactor.redact_conversations([conv])[0]
    assert sorted(out.metadata["product"].values()) == [1, 2, 3] and "ana@" not in str(out.metadata).casefold()
    assert out.turns[0].text == "I work from home"  # "home" is a key under customer_phone, not a phone number


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("my name is xiaoming wang", "xiaoming"),
        ("my name is mildred jones", "mildred"),
        ("regards, zhiming li", "zhiming"),
        ("my name is will and my order is late", "will"),
        ("Holly here, my parcel is late", "Holly"),
        ("my wife holly placed the order", "holly"),
        ("signed, olive", "olive"),
        ("I spoke to amber johnson yesterday", "amber"),
        ("update the account holder to amber okafor", "amber"),
        ("Flat 3B has my package", "3B"),
        ("knock on Apt 12 please", "12"),
        ("dob 19850312", "19850312"),
        ("DOB: 1985-11-24T00:00", "11-24"),
        ("my son is aged 18 months", "18"),
        ("she turned 6 weeks old today", "6"),
    ],
)
def test_what_the_precision_rules_must_not_cost(redactor: Redactor, text: str, value: str) -> None:
    """Names, units, birth dates and ages the review found lost to this session's precision rules."""
    out = redactor.redact_texts([text])[0]
    assert value not in out, out


@pytest.mark.parametrize(
    "text",
    [
        "reached out via Twitter 3 times",
        "The door handle is broken",
        "My xbox is broken",
        "Item#4821 is missing",
        "The booking shows under Pending",
        "Flight SK 1234 was late",
        "Condor DE 2024 schedule",
        "Dell XPS 13, 9310 Model",
        "macbook air m2 8gb.",
        "flight DL 1234 delayed",
        "Call NHS 111 for advice",
        "licence 2024 edition",
        "TIN 2024 deadline",
        "the a/c 18000 BTU unit",
        "The file names look wrong",
        "this is urgent calling",
        "hot plate 2 PCS",
        "bought a PS5 at currys.co.uk",
        '{"first": "2024-01-01"}',
        "Account name - Business Premium",
    ],
)
def test_what_the_new_identifier_rules_must_leave_alone(redactor: Redactor, text: str) -> None:
    """Ordinary support text the review found redacted by this session's first identifier rules."""
    assert redactor.redact_texts([text]) == [text]


def test_a_handle_tweeted_after_a_word_is_no_webmail_address(redactor: Redactor) -> None:
    out = redactor.redact_conversations([_conv("I clicked the link", "@gmail my account is locked")])[0]
    assert out.turns[0].text == "I clicked the link"


def test_two_answers_joined_by_and_are_both_values(redactor: Redactor) -> None:
    conv = _dialogue("Could you send the last 4 of your phone and your postcode?", "0321 and ls6 2qt")
    assert "2qt" not in redactor.redact_conversations([conv])[0].turns[1].text
    assert "D1234" not in redactor.redact_texts(["DL# D1234-56789-01234 (CA)"])[0]
