"""zsvl.toy"""
