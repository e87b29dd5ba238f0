"""zsvl.embed"""
