"""The naive variant: the same two reads written the way a FastAPI tutorial would.

SQLAlchemy ORM (async, asyncpg driver) loads each row as an object, Python builds the
envelope, and pydantic validates and serialises it through ``response_model``. No
auth, like the floor: the difference to the floor is the framework path alone.

    DATABASE_URL=... BENCH_TENANT=<uuid> uvicorn naive_app:app --app-dir bench \\
        --loop uvloop --http httptools --workers 1
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Response
from pydantic import BaseModel
from sqlalchemy import Boolean, DateTime, Text, select
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

TENANT = uuid.UUID(os.environ["BENCH_TENANT"])
URL = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+asyncpg://", 1)

engine = create_async_engine(URL, pool_size=10, max_overflow=0)
Session = async_sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class Interaction(Base):
    __tablename__ = "interactions"

    customer_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    security_group_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    modified: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    modified_by: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    is_deleted: Mapped[bool] = mapped_column(Boolean)
    etag: Mapped[str] = mapped_column(Text)


class Meta(BaseModel):
    created: datetime
    modified: datetime
    resource: str
    createdBy: uuid.UUID
    isDeleted: bool
    modifiedBy: uuid.UUID
    etag: str


class Document(BaseModel):
    id: uuid.UUID
    data: dict[str, Any]
    meta: Meta
    customerId: uuid.UUID
    securityGroupId: uuid.UUID

    @classmethod
    def of(cls, row: Interaction) -> Document:
        return cls(
            id=row.id,
            data=row.data,
            meta=Meta(
                created=row.created,
                modified=row.modified,
                resource="interactions",
                createdBy=row.created_by,
                isDeleted=row.is_deleted,
                modifiedBy=row.modified_by,
                etag=row.etag,
            ),
            customerId=row.customer_id,
            securityGroupId=row.security_group_id,
        )


class Page(BaseModel):
    data: list[Document]
    meta: dict[str, Any]


async def session() -> AsyncIterator[AsyncSession]:
    async with Session() as db:
        yield db


DB = Annotated[AsyncSession, Depends(session)]
app = FastAPI()


@app.get("/v2/interactions/{id}", response_model=Document)
async def get_interaction(id: uuid.UUID, db: DB, response: Response) -> Document:
    found = await db.scalar(
        select(Interaction).where(
            Interaction.customer_id == TENANT, Interaction.id == id, ~Interaction.is_deleted
        )
    )
    if found is None:
        raise HTTPException(404)
    response.headers["ETag"] = f'"{found.etag}"'
    return Document.of(found)


@app.get("/v2/interactions", response_model=Page)
async def list_interactions(
    db: DB,
    campaign: Annotated[str, Query(alias="filter[/data/campaignId]")],
    limit: int = 100,
    skip: int = 0,
) -> Page:
    rows = await db.scalars(
        select(Interaction)
        .where(
            Interaction.customer_id == TENANT,
            ~Interaction.is_deleted,
            Interaction.data["campaignId"].astext == campaign,
        )
        .order_by(Interaction.id)
        .limit(limit)
        .offset(skip)
    )
    return Page(data=[Document.of(row) for row in rows], meta={})
