import pytest

from eval.kb_topics import OTHER_TOPIC, TOPICS, kb_topic_dataset, topic_of


@pytest.mark.parametrize(("intent", "topic"), [
    ("card_arrival", "cards"),
    ("top_up_by_card_charge", "top_ups"),
    ("transfer_fee_charged", "transfers"),
    ("wrong_exchange_rate_for_cash_withdrawal", "exchange_and_cash"),
    ("transaction_charged_twice", "payments"),
    ("Refund_not_showing_up", "payments"),
    ("verify_my_identity", OTHER_TOPIC),
])
def test_topic_of_groups_intents_by_name(intent, topic):
    assert topic_of(intent) == topic


def test_dataset_trains_on_the_knowledge_base_and_tests_on_customer_messages():
    data = kb_topic_dataset()
    assert len(data.train) == 447  # every title and answer sentence of the shipped base
    assert data.labels == sorted([name for name, _ in TOPICS] + [OTHER_TOPIC])
    assert abs(len(data.validation) - len(data.test)) <= 1 and len(data.validation) > 50
    held_out = [ex.text for ex in data.validation + data.test]
    assert len(set(held_out)) == len(held_out)
    assert not set(held_out) & {ex.text for ex in data.train}
    assert {ex.label for ex in data.validation + data.test} <= set(data.labels)


def test_dataset_split_is_seeded():
    first, again, other = kb_topic_dataset(seed=0), kb_topic_dataset(seed=0), kb_topic_dataset(seed=1)
    assert [ex.text for ex in first.test] == [ex.text for ex in again.test]
    assert [ex.text for ex in first.test] != [ex.text for ex in other.test]
