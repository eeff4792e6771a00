from todo.store import TodoList


def test_add_keeps_items_in_order() -> None:
    todos = TodoList()
    todos.add("write the plan")
    todos.add("ship it")
    assert [i.title for i in todos.items] == ["write the plan", "ship it"]


def test_complete_removes_an_item_from_pending() -> None:
    todos = TodoList()
    todos.add("a")
    todos.add("b")
    todos.complete("a")
    assert [i.title for i in todos.pending()] == ["b"]
