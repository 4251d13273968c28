import pytest

from agent.cards import luhn_valid, mask_cards


@pytest.mark.parametrize("number", ["4111111111111111", "5555555555554444", "378282246310005", "4012888888881881",
                                    "6011111111111117", "4222222222222"])
def test_luhn_accepts_test_card_numbers(number):
    assert luhn_valid(number)


@pytest.mark.parametrize("number", ["4111111111111112", "1234567812345678", "378282246310006"])
def test_luhn_rejects_wrong_check_digits(number):
    assert not luhn_valid(number)


@pytest.mark.parametrize("text", ["4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111",
                                  "4111 1111-1111 1111"])
def test_separators_are_allowed(text):
    masked, count = mask_cards(text)
    assert masked == "•••• 1111" and count == 1


def test_numbers_inside_text_are_masked_and_the_rest_kept():
    masked, count = mask_cards("my card 5555 5555 5555 4444 was charged twice, and 378282246310005 too.")
    assert masked == "my card •••• 4444 was charged twice, and •••• 0005 too."
    assert count == 2


@pytest.mark.parametrize("text", [
    "order 1234567812345678 is late",      # 16 digits, not Luhn-valid
    "call 0044 20 7946 0958",              # phone number, too short
    "reference 411111111111",              # 12 digits
    "iban digits 41111111111111111111111",  # 23 digits: longer than any card
])
def test_non_card_numbers_are_left_alone(text):
    assert mask_cards(text) == (text, 0)


def test_a_card_number_glued_to_more_digits_is_not_a_card():
    assert mask_cards("41111111111111110000000")[1] == 0


def test_empty_and_plain_text():
    assert mask_cards("") == ("", 0)
    assert mask_cards("where is my card?") == ("where is my card?", 0)


def test_double_separators_break_the_number():
    assert mask_cards("4111  1111  1111  1111")[1] == 0
