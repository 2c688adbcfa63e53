"""Who can be paged and who has a role: one rule in Python and in SQL."""

from __future__ import annotations

from itertools import product

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.models import Role, User, users_by_id, users_with_role
from tests.conftest import UserFactory


def test_can_be_paged_is_the_same_rule_on_a_row_and_in_a_query(
    db: Session, make_user: UserFactory
) -> None:
    expected: dict[int, bool] = {}
    for active, phone, verified in product((True, False), (True, False), (True, False)):
        user = make_user(verified=verified)
        user.active = active
        if not phone:
            user.phone = None
        db.commit()
        expected[user.id] = active and phone and verified
    assert {user_id: db.get_one(User, user_id).can_be_paged for user_id in expected} == expected
    pageable = set(db.scalars(select(User.id).where(User.can_be_paged)))
    assert pageable == {user_id for user_id, can in expected.items() if can}


def test_users_with_role_are_the_active_holders_of_that_role_by_id(
    db: Session, make_user: UserFactory
) -> None:
    operator = make_user(roles=("operator",))
    manager = make_user(roles=("operator", "rota_manager"))
    coordinator = make_user(roles=("coordinator",), provinces=())
    gone = make_user(roles=("rota_manager",))
    gone.active = False
    db.commit()

    assert users_with_role(db, Role.OPERATOR) == [operator, manager]
    assert users_with_role(db, Role.ROTA_MANAGER) == [manager]
    assert users_with_role(db, Role.ROTA_MANAGER, active=False) == [manager, gone]
    assert users_with_role(db, Role.COORDINATOR) == [coordinator]
    assert users_with_role(db, Role.ADMIN) == []
    assert users_by_id(db, [gone.id, operator.id, 999_999]) == {
        gone.id: gone,
        operator.id: operator,
    }
    assert users_by_id(db, []) == {}
