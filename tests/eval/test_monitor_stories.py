from eval.monitor_stories import CONTROL, SURGE, StoryMaker, evaluate, format_result


def test_syndication_alerts_only_when_copies_are_counted_and_pairs_are_told_apart():
    result = evaluate(pairs=30, seed=3, seeds=1)
    assert result["alerted"]["stories"][CONTROL] == 0 and result["alerted"]["items"][CONTROL] == 1
    assert result["alerted"]["stories"][SURGE] == 1
    assert result["clustering"]["precision"] >= 0.95 and result["clustering"]["recall"] >= 0.95
    assert "--count stories over 1 feeds" in format_result(result)


def test_copies_keep_the_story_and_change_its_text():
    maker = StoryMaker(0)
    story = maker.story(CONTROL, "negative")
    copies = [maker.copy(story) for _ in range(20)]
    assert all(c.company == story.company and c.tone == story.tone for c in copies)
    assert sum(c.title != story.title for c in copies) >= 18
