"""Named versions of a RAG knowledge base and rollback (the user guide's 场景2).

    python rag_version_manager.py

Where this differs from the guide's code:
- Allowed additions: ``from datetime import datetime``, the client import,
  and the client and collection names as parameters (the defaults are the
  guide's).
- Not allowed, and still here because the product does not yet do what
  the guide expects (issue 24, "rollback works as written"):
  - backup names take only letters, digits and ``_``, so the version name
    is made safe (``v1.0`` → ``v1_0``) where the guide uses
    ``rag_version_v1.0``;
  - a restore onto existing collections is refused unless told to replace
    them, so the rollback passes ``drop_existing=True`` where the guide's
    restore replaces them by itself.
"""

import re
from datetime import datetime

from milvus_backup import BackupClient


class RAGVersionManager:
    """RAG 知识库版本管理"""

    def __init__(self, client=None, collections=("documents", "embeddings")):
        self.client = client or BackupClient()
        self.collections = list(collections)
        self.versions = {}

    def create_version(self, version_name, description=""):
        """创建知识库版本"""
        backup_name = f"rag_version_{re.sub(r'[^A-Za-z0-9_]', '_', version_name)}"

        # 创建备份
        backup_id = self.client.create_backup(
            backup_name=backup_name,
            collections=self.collections,
        )

        # 记录版本信息
        self.versions[version_name] = {
            "backup_id": backup_id,
            "description": description,
            "created_at": datetime.now(),
            "backup_name": backup_name,
        }

        print(f"✅ Version {version_name} created")

    def rollback_to_version(self, version_name):
        """回滚到指定版本"""
        if version_name not in self.versions:
            raise ValueError(f"Version {version_name} not found")

        version = self.versions[version_name]

        # 恢复备份 (replacing the current collections)
        self.client.restore_backup(
            backup_name=version["backup_name"],
            collections=self.collections,
            drop_existing=True,
        )

        print(f"✅ Rolled back to version {version_name}")

    def list_versions(self):
        """列出所有版本"""
        for name, info in self.versions.items():
            print(f"{name}: {info['description']} ({info['created_at']})")


if __name__ == "__main__":
    # 使用示例
    manager = RAGVersionManager()

    # 创建版本
    manager.create_version("v1.0", "Initial knowledge base")

    # 更新知识库...

    # 创建新版本
    manager.create_version("v1.1", "Added new documents")

    # 如果有问题，回滚
    manager.rollback_to_version("v1.0")
