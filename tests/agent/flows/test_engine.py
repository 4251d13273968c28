from datetime import datetime

from agent.flows import FlowBook, FlowEngine, FlowState
from agent.nlu import Understanding
from agent.router import Decision
from finetune.models.tagger import Entity

NOW = datetime(2026, 3, 18, 12)
ENGINE = FlowEngine(FlowBook.load())


def understood(text, intent=None, entities=()):
    found = []
    for kind, words in entities:
        start = text.index(words)
        found.append(Entity(kind, words, start, start + len(words), 0.9))
    return Understanding(text, intent, 0.9, ((intent, 0.9),) if intent else (), tuple(found))


def run(turns, state=None):
    """Each turn: (message, router decision, entities); returns the steps."""
    steps = []
    for message, decision, entities in turns:
        step = ENGINE.step(message, understood(message, decision.intent, entities), decision, state, NOW)
        steps.append(step)
        state = None if step is None else step.state
    return steps


def answer(intent):
    return Decision("answer", f"intent {intent}", intent)


SMALL = Decision("clarify", "too short")
CHARGED = answer("transaction_charged_twice")


def values(step):
    return {k: v["value"] for k, v in step.slots.items()}


def test_details_in_the_first_message_are_never_asked_for_again():
    [step] = run([("I was charged twice for £25.40 at Tesco yesterday", CHARGED, [("company_name", "Tesco")])])
    assert step.route == "confirm" and step.flow.name == "unrecognised_payment"
    assert values(step) == {"amount": {"amount": "25.40", "currency": "GBP"}, "date": "2026-03-17", "merchant": "Tesco"}
    assert "£25.40" in step.text and "Tuesday 17 March 2026" in step.text and "yes / no" in step.text


def test_details_spread_over_turns_are_asked_for_one_at_a_time_then_confirmed_and_a_case_opened():
    steps = run([("I don't recognise a payment on my card", answer("card_payment_not_recognised"), []),
                 ("it was 42.99", SMALL, []), ("last Friday", SMALL, []), ("Amazon", SMALL, []), ("yes", SMALL, [])])
    assert [s.route for s in steps] == ["collect", "collect", "collect", "confirm", "handoff"]
    assert [s.awaiting for s in steps[:3]] == ["amount", "date", "merchant"]
    assert steps[0].text.endswith("How much was the payment?")
    assert steps[-1].open_case and steps[-1].state is None
    assert values(steps[-1]) == {"amount": {"amount": "42.99", "currency": "GBP"}, "date": "2026-03-13", "merchant": "Amazon"}


def test_a_correction_replaces_the_value_it_takes_back():
    steps = run([("I was charged twice for £60 at Tesco yesterday", CHARGED, [("company_name", "Tesco")]),
                 ("sorry, it was £16 not £60", SMALL, [])])
    assert steps[-1].route == "confirm" and values(steps[-1])["amount"]["amount"] == "16.00"
    steps = run([("I was charged twice for £60 at Tesco yesterday", CHARGED, [("company_name", "Tesco")]),
                 ("no", SMALL, []), ("it was on Monday", SMALL, []), ("yes", SMALL, [])])
    assert [s.route for s in steps] == ["confirm", "collect", "confirm", "handoff"]
    assert values(steps[-1])["date"] == "2026-03-16"


def test_cues_put_each_amount_in_its_slot():
    [step] = run([("I asked for £100 but the machine only gave me £60", answer("wrong_amount_of_cash_received"), [])])
    assert values(step)["amount_requested"]["amount"] == "100.00"
    assert values(step)["amount_received"]["amount"] == "60.00"
    assert step.route == "collect" and step.awaiting == "date"


def test_cancel_leaves_the_flow_without_a_case():
    steps = run([("my card was stolen", answer("lost_or_stolen_card"), []), ("never mind, I found it", SMALL, [])])
    assert steps[0].route == "collect" and "Freeze" in steps[0].text  # the advice comes first
    assert steps[1].route == "cancel" and steps[1].state is None and not steps[1].open_case


def test_a_question_mid_flow_is_answered_and_the_flow_resumes_with_its_question():
    steps = run([("my transfer failed", answer("failed_transfer"), []),
                 ("how long do transfers take?", answer("transfer_timing"), []), ("£200", SMALL, [])])
    assert steps[1].route == "answer" and "How much did you send?" in steps[1].text
    assert steps[1].state.awaiting == "amount"
    assert steps[2].route == "collect" and steps[2].awaiting == "date"


def test_replies_without_a_value_are_asked_again_then_go_to_a_person():
    steps = run([("my transfer failed", answer("failed_transfer"), []), ("hmm", SMALL, []),
                 ("I don't know", SMALL, []), ("blue", SMALL, [])])
    assert [s.route for s in steps] == ["collect", "collect", "collect", "handoff"]
    assert "couldn't read an amount" in steps[1].text and steps[2].text.startswith("That's fine")
    assert not steps[-1].open_case and "no usable detail" in steps[-1].reason


def test_asking_for_a_person_mid_flow_hands_off_with_the_slots_so_far():
    steps = run([("I sent £50 and it failed", answer("failed_transfer"), []),
                 ("let me talk to a person", Decision("handoff", "the customer asked for a person"), [])])
    assert steps[-1].route == "handoff" and values(steps[-1]) == {"amount": {"amount": "50.00", "currency": "GBP"}}
    assert steps[-1].state is None and not steps[-1].open_case


def test_general_questions_get_the_knowledge_base_and_other_intents_start_nothing():
    assert run([("How do refunds work?", answer("request_refund"), [])]) == [None]
    assert run([("Where is my card?", answer("card_arrival"), [])]) == [None]
    assert run([("hello", Decision("smalltalk", "greeting"), [])]) == [None]


def test_a_question_that_starts_a_flow_is_answered_and_the_case_offered():
    refund = answer("request_refund")
    steps = run([("how do I get my £30 back from Amazon?", refund, [("company_name", "Amazon")]), ("yes", SMALL, [])])
    assert steps[0].route == "answer" and steps[0].state.offered and "open a case" in steps[0].text
    assert steps[1].route == "handoff" and steps[1].open_case  # every detail was in the question
    steps = run([("my card was stolen, what should I do?", answer("lost_or_stolen_card"), []), ("yes", SMALL, []),
                 ("yesterday", SMALL, [])])
    assert [s.route for s in steps] == ["answer", "collect", "confirm"]
    # not taken up: offered once more after the next answer, then dropped
    steps = run([("my card was stolen, what should I do?", answer("lost_or_stolen_card"), []),
                 ("where is my card?", answer("card_arrival"), []), ("how do I change my PIN?", answer("change_pin"), [])])
    assert steps[1].aside and "still like a case" in steps[1].text and steps[2] is None


def test_a_clarifying_question_between_two_intents_of_one_flow_starts_that_flow():
    decision = Decision("clarify", "close", "card_payment_not_recognised",
                        ("card_payment_not_recognised", "direct_debit_payment_not_recognised"))
    [step] = run([("there's a payment I don't know", decision, [])])
    assert step.flow.name == "unrecognised_payment"
    mixed = Decision("clarify", "close", "card_arrival", ("card_arrival", "request_refund"))
    assert run([("card refund", mixed, [])]) == [None]


def test_state_survives_a_round_trip_through_json():
    [step] = run([("my transfer failed", answer("failed_transfer"), [])])
    again = FlowState.from_dict(step.state.to_dict())
    assert again == step.state and FlowState.from_dict(None) is None and FlowState.from_dict({"x": 1}) is None


def test_a_state_for_a_flow_the_file_no_longer_has_is_dropped():
    assert run([("hi", Decision("smalltalk", "greeting"), [])], state=FlowState("gone")) == [None]


def unsure(intent, *others):
    return Understanding("", intent, 0.4, tuple((i, 0.4 - n * 0.1) for n, i in enumerate((intent, *others))))


def test_when_the_classifier_is_unsure_the_flow_whose_slots_the_message_fills_wins():
    message = "I sent £300 to James Taylor on Monday and he still hasn't got it"
    nlu = Understanding(message, "wrong_amount_of_cash_received", 0.4,
                        (("wrong_amount_of_cash_received", 0.4), ("transfer_not_received_by_recipient", 0.3)))
    step = ENGINE.step(message, nlu, Decision("clarify", "close", "wrong_amount_of_cash_received",
                                              ("wrong_amount_of_cash_received", "transfer_not_received_by_recipient")),
                       None, NOW)
    assert step.flow.name == "transfer_problem" and step.route == "confirm"
    assert values(step)["recipient"] == "James Taylor"
    # too little evidence, or a most likely intent that is no flow's: nothing starts
    thin = "I sent it to Anna"
    assert ENGINE.step(thin, Understanding(thin, "failed_transfer", 0.3, (("failed_transfer", 0.3),)),
                       Decision("out_of_scope", "abstained"), None, NOW) is None
    rate = "I paid €62 on 12 May and the rate was bad"
    assert ENGINE.step(rate, Understanding(rate, "card_payment_wrong_exchange_rate", 0.4,
                                           (("card_payment_wrong_exchange_rate", 0.4), ("card_payment_not_recognised", 0.3))),
                       Decision("clarify", "close"), None, NOW) is None


def test_yes_and_no_are_never_taken_as_a_name_and_a_masked_card_is_no_amount():
    steps = run([("I want a refund of £20", answer("request_refund"), []), ("yes", SMALL, []), ("Argos", SMALL, [])])
    assert steps[1].route == "collect" and "merchant" not in steps[1].slots
    assert values(steps[2])["merchant"] == "Argos"
    [step] = run([("my card •••• 1111 was charged twice at Tesco", CHARGED, [("amount_of_money", "1111")])])
    assert "amount" not in step.slots and step.awaiting == "amount"
